"""Content-Security-Policy: every page answers with a policy that allows no inline or evaluated script, and nothing in
templates/ needs one. The API docs pages have a relaxed style policy of their own, and still no inline script."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import BindingFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict(response) -> None:
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"], "scripts from the portal itself only: no inline, no eval"
    assert "'unsafe-inline'" not in directives["style-src"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]


@pytest.fixture
def pages(owner, security):
    tool = ToolFactory(owner=owner, slug="csp-tool")
    identity = IdentityFactory(owner=owner, name="csp-identity")
    BindingFactory(tool=tool, identity=identity)
    return [
        reverse("inventory:dashboard"),
        reverse("inventory:tool_list"),
        reverse("inventory:tool_detail", args=[tool.pk]),
        reverse("inventory:tool_edit", args=[tool.pk]),
        reverse("inventory:tool_create"),
        reverse("inventory:tool_posture", args=[tool.pk]),
        reverse("inventory:identity_list"),
        reverse("inventory:identity_detail", args=[identity.pk]),
        reverse("inventory:identity_create"),
        reverse("inventory:finding_list"),
        reverse("inventory:compliance"),
        reverse("inventory:compliance_report"),
        reverse("approvals:request_list"),
        reverse("approvals:request_create"),
        reverse("approvals:review_queue"),
        reverse("approvals:grant_list"),
        reverse("approvals:policy"),
        reverse("inventory:audit_events"),
        reverse("inventory:audit_changes"),
    ]


def test_every_main_page_has_a_strict_policy(page_as, pages):
    client = page_as("security")
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)


def test_htmx_fragments_and_the_sign_in_page_have_it_too(page_as, pages, client):
    assert_strict(client.get(reverse("login")))
    fragment = page_as("security").get(reverse("inventory:tool_list"), {"search": "csp"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert_strict(fragment)


def test_api_docs_work_without_inline_script(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    directives = policy(page)
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" in directives["style-src"]  # Swagger UI's own <style>, on this page only
    html = page.content.decode()
    assert not inline_scripts(html), "the docs page must load its start-up script from a URL"
    script_url = re.search(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', html).group(1).replace("&amp;", "&")
    script = client.get(script_url)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()

    redoc = client.get("/api/redoc/")
    assert redoc.status_code == 200
    assert policy(redoc)["script-src"] == ["'self'"]
    assert not inline_scripts(redoc.content.decode())


def inline_scripts(html: str) -> list[str]:
    """Script elements with code in them, other than JSON data blocks (which browsers never run)."""
    found = []
    for match in re.finditer(r"<script\b([^>]*)>(.*?)</script\s*>", html, re.IGNORECASE | re.DOTALL):
        attributes, body = match.groups()
        if re.search(r"""type\s*=\s*["']?application/(ld\+)?json""", attributes, re.IGNORECASE):
            continue
        if body.strip():
            found.append(match.group(0)[:120])
    return found


INLINE_HANDLER = re.compile(r"""\son[a-z]+\s*=""", re.IGNORECASE)
HTMX_EVAL = re.compile(r"""\s(data-)?hx-on\b|\s(data-)?hx-(vals|vars)\s*=\s*["']\s*(js|javascript):""", re.IGNORECASE)
# An event name directly followed by "[", at the start of the attribute or after a comma: `change[...]`.
EVENT_FILTER = re.compile(r"""hx-trigger\s*=\s*"(?:[^"]*?,)?\s*[\w:.-]+\[""", re.IGNORECASE)


TEMPLATE_COMMENT = re.compile(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.DOTALL)


def template_files() -> list[Path]:
    files = sorted(TEMPLATES.rglob("*.html"))
    assert files, f"no templates under {TEMPLATES}"
    return files


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_hold_no_inline_script(path):
    text = TEMPLATE_COMMENT.sub("", path.read_text())
    assert not inline_scripts(text), "move the code into static/js/"
    assert not INLINE_HANDLER.findall(text), "inline event handler (onclick=...): use a listener in static/js/"
    assert not HTMX_EVAL.findall(text), "hx-on / js: values are evaluated JavaScript, which the policy refuses"
    assert not EVENT_FILTER.findall(text), "an hx-trigger event filter [...] is evaluated JavaScript"
    assert "javascript:" not in text.lower()
    assert not re.search(r"<style\b|\sstyle\s*=", text, re.IGNORECASE), "inline style: use a class in portal.css"


def test_htmx_is_configured_not_to_eval_or_inject_styles():
    base = (TEMPLATES / "base.html").read_text()
    config = re.search(r"""<meta name="htmx-config" content='([^']*)'""", base).group(1)
    assert '"allowEval":false' in config and '"includeIndicatorStyles":false' in config


def test_the_scanner_finds_what_it_should():
    assert inline_scripts("<script>alert(1)</script>") and inline_scripts("<SCRIPT type=module>x()</SCRIPT >")
    assert not inline_scripts('<script src="/static/js/portal.js" defer></script>')
    assert not inline_scripts('<script type="application/json" id="d">{"a": 1}</script>')
    assert INLINE_HANDLER.findall('<input onclick="x()">') and INLINE_HANDLER.findall("<body\nonload='x()'>")
    assert not INLINE_HANDLER.findall('<a href="/x" data-option="1" hx-get="/y">')
    assert HTMX_EVAL.findall('<div hx-on:click="x()">') and HTMX_EVAL.findall('<div data-hx-on-click="x()">')
    assert HTMX_EVAL.findall("<div hx-vals='js:{a: 1}'>")
    assert EVENT_FILTER.findall("<form hx-trigger=\"change[target.name !== 'search'], submit\">")
    assert not EVENT_FILTER.findall('<form hx-trigger="input changed delay:300ms from:find input[name=search]">')


def test_the_cached_site_policy_is_the_librarys_and_follows_the_settings(page_as, settings):
    """nhi_portal.middleware builds the site policy once; it must be exactly what django-csp would build."""
    from csp.utils import build_policy

    response = page_as("owner").get("/api/v1/me/")
    assert response["Content-Security-Policy"] == build_policy()
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert page_as("owner").get("/api/v1/me/")["Content-Security-Policy"] == "default-src 'none'"
