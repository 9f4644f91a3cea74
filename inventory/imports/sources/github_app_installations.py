"""GitHub App installations on an organization (`GET /orgs/{org}/installations`: `{"total_count", "installations"}`).

Field names are GitHub's. An installed app is an outside party acting on the org's repositories: a third-party
OAuth-style client. `permissions` are observed facts, never a grant that authorizes. `suspended_at` set: disabled.
The app slug is what the AI catalog recognises (copilot, coderabbitai, devin-ai-integration...).
"""

from inventory.choices import IdentityKind

from .records import IdentityRecord, Parsed, Problems, identifier, listed_rows, moment, obj, text

KIND = "github-app-installations"
PROVIDER = "github"
DESCRIPTION = (
    "JSON object from `gh api /orgs/ORG/installations` (`installations` list). Each installation becomes a "
    "third-party identity `app-installation:<id>`; no credential (GitHub keeps the app's keys)."
)


def parse(raw: bytes, *, account: str = "") -> Parsed:
    parsed, errors = Parsed(), Problems()
    for row in listed_rows(raw, errors, "installations"):
        installation = row.get("id", identifier)
        slug = row.get("app_slug", text, max_length=200)
        app_id = row.get("app_id", identifier, required=False, default="")
        target = row.get("target_type", text, required=False, default="")
        permissions = row.get("permissions", obj, required=False, default={})
        selection = row.get("repository_selection", text, required=False, default="")
        row.get("created_at", moment, required=False)
        suspended = row.get("suspended_at", moment, required=False)
        if not row.ok:
            continue
        parsed.identities.append(
            IdentityRecord(
                external_id=f"app-installation:{installation}",
                label=f"{slug} app",
                kind=IdentityKind.OAUTH_CLIENT,
                where=row.where(),
                third_party=True,
                active=suspended is None,
                match={"github_app": slug},
                attributes={
                    "app_id": app_id,
                    "target_type": target,
                    "permissions": permissions,
                    "repository_selection": selection,
                },
            )
        )
    errors.raise_if_any()
    return parsed
