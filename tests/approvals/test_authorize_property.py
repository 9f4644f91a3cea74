"""Property: whatever the world and the request, allow implies an active, unexpired, matching grant for a bound,
active identity and a human the tool may act for."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from approvals.authorization import AuthorizationQuery, authorize
from inventory.models import ScopeGrant
from inventory.resources import resource_allowed
from tests.factories import BindingFactory, CredentialFactory, IdentityFactory, ScopeFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

TOOLS = ["t-a", "t-b", "t-missing"]
IDENTITIES = ["i-a", "i-b", "i-missing"]
USERS = ["u-in", "u-out", "u-missing"]
SCOPES = ["s-read", "s-write", "s-missing"]
CONSTRAINTS = ["", "proj:a/*", "proj:b", "proj:*/x"]
RESOURCES = ["", "proj:a/1", "proj:a/../b", "proj:b", "proj:c/x", "proj:a", "other"]


@pytest.fixture
def small_world(owner):
    insider, _ = UserFactory(username="u-in"), UserFactory(username="u-out")
    tools = {slug: ToolFactory(owner=owner, slug=slug) for slug in TOOLS[:2]}
    for tool in tools.values():
        tool.allowed_users.add(insider)
    identities = {name: IdentityFactory(owner=owner, name=name) for name in IDENTITIES[:2]}
    for identity in identities.values():
        CredentialFactory(identity=identity)
    scopes = {name: ScopeFactory(name=name) for name in SCOPES[:2]}
    return tools, identities, scopes


def mostly(common, *rare):
    """Lean on the names that exist, so that allows are frequent enough for the property to bite."""
    return st.sampled_from([common] * 4 + list(rare))


grant_spec = st.fixed_dictionaries(
    {
        "identity": mostly("i-a", "i-b"),
        "scope": mostly("s-read", "s-write"),
        "tool": st.sampled_from([*TOOLS[:2], None]),
        "status": st.sampled_from(["active", "expired", "revoked"]),
        "expires_in": st.sampled_from([None, -3600, -1, 60, 86400]),
        "constraint": st.sampled_from(CONSTRAINTS),
        "follows_request": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grants=st.lists(grant_spec, min_size=1, max_size=4),
    bindings=st.sets(st.tuples(mostly("t-a", "t-b"), mostly("i-a", "i-b")), min_size=1),
    tool_status=mostly("active", "pilot", "retired"),
    identity_status=mostly("active", "disabled"),
    request=st.fixed_dictionaries(
        {
            "tool": mostly("t-a", "t-b", "t-missing"),
            "identity": mostly("i-a", "i-b", "i-missing"),
            "on_behalf_of": mostly("u-in", "u-out", "u-missing"),
            "scope": mostly("s-read", "s-write", "s-missing"),
            "resource": st.sampled_from(RESOURCES),
        }
    ),
)
def test_allow_only_with_an_active_matching_grant(small_world, grants, bindings, tool_status, identity_status, request):
    tools, identities, scopes = small_world
    now = timezone.now()
    ScopeGrant.objects.all().update(status="revoked", resource_constraint="__retired__")
    for tool in tools.values():
        tool.bindings.all().delete()
    for tool_slug, identity_name in bindings:
        BindingFactory(tool=tools[tool_slug], identity=identities[identity_name])
    type(tools["t-a"]).objects.filter(slug="t-a").update(status=tool_status)
    type(identities["i-a"]).objects.filter(name="i-a").update(status=identity_status)
    for spec in grants:
        if spec["follows_request"] and request["identity"] in identities and request["scope"] in scopes:
            spec = spec | {"identity": request["identity"], "scope": request["scope"]}
        if spec["status"] == "active" and ScopeGrant.objects.filter(
            identity=identities[spec["identity"]], scope=scopes[spec["scope"]],
            resource_constraint=spec["constraint"], status="active",
        ).exists():  # fmt: skip
            continue
        ScopeGrant.objects.create(
            identity=identities[spec["identity"]],
            scope=scopes[spec["scope"]],
            tool=tools[spec["tool"]] if spec["tool"] else None,
            status=spec["status"],
            resource_constraint=spec["constraint"],
            granted_at=now - timedelta(days=1),
            expires_at=None if spec["expires_in"] is None else now + timedelta(seconds=spec["expires_in"]),
        )

    decision = authorize(query=AuthorizationQuery(**request), source="hypothesis")
    event(decision.reason)

    if not decision.allowed:
        return
    # Every precondition of an allow, checked independently of the decision code.
    assert request["on_behalf_of"] == "u-in"
    assert (request["tool"], request["identity"]) in bindings
    assert not (request["tool"] == "t-a" and tool_status == "retired")
    assert not (request["identity"] == "i-a" and identity_status == "disabled")
    grant = ScopeGrant.objects.get(pk=decision.grant_id)
    assert grant.status == "active"
    assert grant.expires_at is None or grant.expires_at > timezone.now() - timedelta(seconds=5)
    assert grant.identity.name == request["identity"] and grant.scope.name == request["scope"]
    assert grant.tool is None or grant.tool.slug == request["tool"]
    assert resource_allowed(grant.resource_constraint, request["resource"])
    assert ".." not in request["resource"]
