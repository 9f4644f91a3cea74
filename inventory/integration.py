"""The ready MCP gateway config a tool's page offers (format: README, "Enforce with the MCP gateway").

Built from what the tool page has already loaded (its identities and grants), so it costs the page no query. The
token stays an environment variable: a config file is copied around, a token must not be.
"""

import json
import re

from inventory.choices import GrantStatus


def _quoted(text: str) -> str:
    # A TOML basic string: JSON's escaping is valid TOML for every character.
    return json.dumps(text, ensure_ascii=False)


def _upstream_name(identity_name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9-]+", "-", identity_name).strip("-") or "upstream")[:40]


def gateway_config(*, tool, portal_url: str, now) -> str:
    """One [[upstream]] per identity bound to the tool, and one [[upstream.map]] per scope it holds live for the tool
    (the grant's resource constraint is given as the example template): the owner fills in the MCP tool names and
    the upstream's address."""
    live = [
        g for g in tool.grants.all() if g.status == GrantStatus.ACTIVE and (g.expires_at is None or g.expires_at > now)
    ]
    lines = [
        f"# nhi-mcp-gateway config for {tool.name} ({tool.slug}); run: nhi-mcp-gateway --config this-file.toml",
        "[portal]",
        f"url = {_quoted(portal_url.rstrip('/'))}",
        'token_env = "NHI_GATEWAY_TOKEN"  # python manage.py issue_token GATEWAY-USER --tool ' + tool.slug,
        "timeout_ms = 2000",
        "",
        "[listen]",
        'host = "127.0.0.1"',
        "port = 8790",
        "",
        "[human]",
        'mode = "header"  # or "jwt" with jwks, issuer, audience and claim',
        'header = "X-Forwarded-User"',
    ]
    identities = list(tool.identities.all()) or [None]
    placeholders = 0
    for identity in identities:
        name = identity.name if identity else "IDENTITY-NAME"
        lines += [
            "",
            "[[upstream]]",
            f"name = {_quoted(_upstream_name(name))}",
            f"tool = {_quoted(tool.slug)}",
            f"identity = {_quoted(name)}",
            'url = "http://MCP-SERVER:PORT/mcp"  # or: command = ["python", "-m", "your.server"]',
        ]
        held = {(g.scope.name, g.resource_constraint) for g in live if identity and g.identity_id == identity.pk}
        scopes = sorted(held)
        for scope, constraint in scopes or [("SCOPE-NAME", "")]:
            placeholders += 1
            lines += [
                "",
                "[[upstream.map]]",
                f'tool = "MCP-TOOL-{placeholders}"  # the MCP tool that needs this scope',
                f"scope = {_quoted(scope)}",
                # Deliberately not a valid template: the gateway refuses to start until the owner writes one over the
                # MCP tool's own argument (a constant here would ask about one resource whatever the call acts on).
                f'resource = "{{ARGUMENT-NAME}}"  # granted on {_quoted(constraint or "any resource")}; '
                'write a template over the call\'s argument, e.g. "space:{space}"',
            ]
    return "\n".join(lines) + "\n"
