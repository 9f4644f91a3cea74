"""GitHub's organization lists, fetched page by page as `gh api --paginate` does.

- Fine-grained personal access tokens: `GET /orgs/{org}/personal-access-tokens`, a JSON array per page.
- App installations: `GET /orgs/{org}/installations`, `{"total_count", "installations": [...]}` per page.

Pages follow the `Link` header's `rel="next"` (GitHub's documented pagination), 100 entries a page. The token is
read from the environment variable the pull names, sent only to the configured API's own scheme and host (a `next`
link elsewhere is refused rather than followed with the token), and never written anywhere.
"""

import json
import os
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings

from .errors import PullFailed

API_VERSION = "2022-11-28"
# A bound on pages, far past any organization's (100 entries each), so a looping `next` link cannot spin forever.
MAX_PAGES = 10_000
_PATHS = {
    "github-fine-grained-pats": ("/orgs/{org}/personal-access-tokens", None),
    "github-app-installations": ("/orgs/{org}/installations", "installations"),
}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def fetch_org_list(kind: str, options: dict[str, str]) -> bytes:
    """Every page of the org's list, joined into the one document a file import of `kind` takes."""
    path, envelope = _PATHS[kind]
    token = os.environ.get(options["token_env"], "")
    if not token:
        raise PullFailed(f"The environment variable {options['token_env']} (token_env) holds no GitHub token.")
    base = (options.get("api_url") or "https://api.github.com").rstrip("/")
    url = base + path.format(org=quote(options["org"], safe="")) + "?per_page=100"
    headers = {"Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
               "X-GitHub-Api-Version": API_VERSION, "User-Agent": "nhi-portal-discovery"}  # fmt: skip
    entries: list = []
    size, expected = 0, None
    with requests.Session() as session:
        for _ in range(MAX_PAGES):
            page = _get(session, url, headers)
            size += len(page.content)
            if size > settings.IMPORT_MAX_BYTES:
                raise PullFailed(f"The list is larger than IMPORT_MAX_BYTES ({settings.IMPORT_MAX_BYTES}).")
            listed, total = _entries(page, envelope)
            entries.extend(listed)
            expected = total if expected is None else expected
            following = page.links.get("next", {}).get("url")
            if not following:
                break
            if _origin(following) != _origin(base):
                raise PullFailed("GitHub's next-page link points to another host; the token is not sent there.")
            url = following
        else:
            raise PullFailed(f"More than {MAX_PAGES} pages; stopped.")
    # A pull marks what it no longer lists as gone: a short answer (a page lost, a list GitHub cut off) must not read as
    # objects that disappeared, so an answer that says it is incomplete, or lists nothing, changes nothing.
    if expected is not None and expected != len(entries):
        raise PullFailed(f"GitHub said {expected} entries but its pages held {len(entries)}; nothing was changed.")
    if not entries:
        raise PullFailed(
            "GitHub listed nothing; a pull never marks everything gone on an empty answer (import a file with full=1 "
            "to do that)."
        )
    document = entries if envelope is None else {"total_count": len(entries), envelope: entries}
    return json.dumps(document, separators=(",", ":")).encode()


def _get(session: requests.Session, url: str, headers: dict[str, str]) -> requests.Response:
    try:
        response = session.get(url, headers=headers, timeout=settings.SOURCE_PULL_TIMEOUT_SECONDS,
                               allow_redirects=False)  # fmt: skip
    except requests.RequestException as error:
        raise PullFailed(f"GitHub could not be reached ({type(error).__name__}).") from None
    if response.status_code != 200:
        limited = response.status_code in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0"
        raise PullFailed(f"GitHub answered HTTP {response.status_code}" + (" (rate limit)." if limited else "."))
    return response


def _entries(response: requests.Response, envelope: str | None) -> tuple[list, int | None]:
    """The page's entries, and the total the envelope says the whole list holds (None for a plain array)."""
    try:
        body = response.json()
    except ValueError:
        raise PullFailed("GitHub answered with something other than JSON.") from None
    total = None
    if envelope is not None:
        total = body.get("total_count") if isinstance(body, dict) else None
        body = body.get(envelope) if isinstance(body, dict) else None
        if not isinstance(total, int) or isinstance(total, bool):
            raise PullFailed("GitHub's answer has no total_count.")
    if not isinstance(body, list):
        raise PullFailed("GitHub's answer is not the documented list.")
    return body, total
