from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import PolicySettings
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

JUSTIFICATION = "The assistant drafts answers from the support knowledge base for agents."


@pytest.fixture
def scopes(db):
    return {
        "read": ScopeFactory(name="kb:read", risk="read"),
        "read_sensitive": ScopeFactory(name="crm:customer:read", risk="read", sensitive=True),
        "write": ScopeFactory(name="tickets:write", risk="write"),
        "admin": ScopeFactory(name="org:admin", risk="admin"),
    }


@pytest.fixture
def security2(db):
    return UserFactory(username="sec2", roles=["security"])


@pytest.fixture
def tool(owner):
    return ToolFactory(owner=owner, slug="helpdesk", name="Helpdesk", environment="dev", data_classification="internal")


@pytest.fixture
def identity(owner, tool):
    identity = IdentityFactory(owner=owner, name="svc-helpdesk")
    BindingFactory(tool=tool, identity=identity)
    return identity


@pytest.fixture
def file_request(owner, tool, identity, scopes):
    """File a request as `owner` for the given scope keys (default: one read scope)."""

    def make(*keys, requester=None, duration_days=14, resource="", **kwargs):
        items = [services.ScopeItem(scopes[k], resource) for k in (keys or ("read",))]
        return services.request_file(
            requester=requester or owner,
            tool=kwargs.pop("tool", tool),
            identity=kwargs.pop("identity", identity),
            items=items,
            justification=kwargs.pop("justification", JUSTIFICATION),
            duration_days=duration_days,
            **kwargs,
        )

    return make


@pytest.fixture
def auto_approve_on(db):
    PolicySettings.objects.create(auto_approve_low_risk=True, auto_approve_max_days=7)


@pytest.fixture
def world(owner):
    """A tool allowed for team members, its bound identity with a live credential and a grant on payments/*."""
    alice = UserFactory(username="alice")
    team = TeamFactory(slug="payments-team")
    team.members.add(alice)
    tool = ToolFactory(owner=owner, slug="release-agent", status="active")
    tool.allowed_teams.add(team)
    identity = IdentityFactory(owner=owner, name="svc-release")
    BindingFactory(tool=tool, identity=identity)
    credential = CredentialFactory(identity=identity, expires_at=timezone.now() + timedelta(days=30))
    scope = ScopeFactory(name="deploy:release:write", risk="write")
    grant = GrantFactory(
        identity=identity, scope=scope, tool=tool, resource_constraint="project:payments/*",
        expires_at=timezone.now() + timedelta(days=10),
    )  # fmt: skip
    return {
        "alice": alice, "team": team, "tool": tool, "identity": identity, "credential": credential,
        "scope": scope, "grant": grant,
    }  # fmt: skip
