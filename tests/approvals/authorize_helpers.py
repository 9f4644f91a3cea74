"""The question most authorize tests ask, and gateway tokens for them."""

from io import StringIO

from django.core.management import call_command

BASE = {
    "tool": "release-agent",
    "identity": "svc-release",
    "on_behalf_of": "alice",
    "scope": "deploy:release:write",
    "resource": "project:payments/api",
}


def ask(client, **overrides):
    response = client.post("/api/v1/authorize/", BASE | overrides, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def gateway_token(username: str, *tools: str) -> str:
    args = [username, "--days", "1", *[a for t in tools for a in ("--tool", t)]]
    out = StringIO()
    call_command("issue_token", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()
