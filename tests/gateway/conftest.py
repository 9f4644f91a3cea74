import pytest
from django.utils import timezone

from tests.approvals.authorize_helpers import gateway_token
from tests.factories import (
    BindingFactory,
    CredentialFactory,
    GrantFactory,
    IdentityFactory,
    ScopeFactory,
    TeamFactory,
    ToolFactory,
    UserFactory,
)
from tests.gateway.processes import free_port, start_gateway, start_sample


@pytest.fixture(scope="module")
def sample():
    process, url = start_sample()
    yield url
    process.stop()


@pytest.fixture
def estate(transactional_db, owner):
    """docs-mcp acting through svc-docs-reader, allowed for alice, with an approved grant on space:ENG."""
    alice = UserFactory(username="alice")
    team = TeamFactory(slug="platform")
    team.members.add(alice)
    tool = ToolFactory(owner=owner, slug="docs-mcp", status="active", environment="staging")
    tool.allowed_teams.add(team)
    identity = IdentityFactory(owner=owner, name="svc-docs-reader")
    BindingFactory(tool=tool, identity=identity)
    CredentialFactory(identity=identity, expires_at=timezone.now() + timezone.timedelta(days=30))
    scope = ScopeFactory(name="confluence:content:read", risk="read")
    grant = GrantFactory(
        identity=identity, scope=scope, tool=tool, resource_constraint="space:ENG",
        expires_at=timezone.now() + timezone.timedelta(days=10),
    )  # fmt: skip
    UserFactory(username="gw", roles=["gateway"])
    return {"alice": alice, "tool": tool, "identity": identity, "scope": scope, "grant": grant,
            "token": gateway_token("gw", "docs-mcp")}  # fmt: skip


def config_text(
    *, portal: str, port: int, upstream: str, human: str = "", timeout_ms: int = 2000, flush_ms: int = 50
) -> str:
    human = human or 'mode = "header"\nheader = "X-Forwarded-User"'
    return f"""
[portal]
url = "{portal}"
token_env = "NHI_GATEWAY_TOKEN"
timeout_ms = {timeout_ms}

[listen]
host = "127.0.0.1"
port = {port}

[human]
{human}

[usage]
flush_ms = {flush_ms}

[[upstream]]
name = "docs"
tool = "docs-mcp"
identity = "svc-docs-reader"
{upstream}

[[upstream.map]]
tool = "search_docs"
scope = "confluence:content:read"
resource = "space:{{space}}"

[[upstream.map]]
tool = "read_page"
scope = "confluence:content:read"
resource = "space:{{space}}"
"""


@pytest.fixture
def gateway_for(live_server, sample, estate):
    """Start a gateway in front of the sample upstream; returns its MCP URL. Stopped after the test."""
    started = []

    def start(
        *, portal: str | None = None, human: str = "", upstream: str | None = None, timeout_ms: int = 2000,
        flush_ms: int = 50,
    ):  # fmt: skip
        port = free_port()
        upstream = upstream or f'url = "{sample}/mcp"'
        text = config_text(portal=portal or live_server.url, port=port, upstream=upstream, human=human,
                           timeout_ms=timeout_ms, flush_ms=flush_ms)  # fmt: skip
        started.append(start_gateway(text, estate["token"], port))
        return f"http://127.0.0.1:{port}/mcp"

    start.started = started  # the processes, for a test that must signal one
    yield start
    for process in started:
        process.stop()
