"""The portal's side of the gateway: the tool page's ready config, the audit pages' gateway columns, and usage that
names the decision it followed."""

import tomllib

import pytest
from django.utils import timezone

from approvals.authorization import AuthorizationQuery, authorize
from gateway.config import parse
from inventory.models import AccessEvent
from tests.approvals.authorize_helpers import BASE

pytestmark = pytest.mark.django_db


def test_the_tool_page_offers_a_gateway_config_the_gateway_accepts(page_as, world):
    page = page_as("owner").get(world["tool"].get_absolute_url())
    assert page.status_code == 200
    text = page.context["gateway_config"]
    assert 'identity = "svc-release"' in text and 'scope = "deploy:release:write"' in text
    assert 'granted on "project:payments/*"' in text and "NHI_GATEWAY_TOKEN" in text
    # What the owner fills in: the MCP tool's name, its argument in the template, the upstream's address.
    text = text.replace("{ARGUMENT-NAME}", "project:{project}").replace("http://testserver", "https://portal.example")
    config = parse(tomllib.loads(text), {"NHI_GATEWAY_TOKEN": "x"})
    assert config.upstreams[0].tool == "release-agent" and config.upstreams[0].maps[0].arguments == ("project",)

    assert b"Through the MCP gateway" in page.content


def test_the_tool_page_query_count_does_not_grow_with_grants(page_as, world, django_assert_max_num_queries):
    client = page_as("owner")
    client.get(world["tool"].get_absolute_url())
    from tests.factories import GrantFactory, ScopeFactory

    for n in range(5):
        GrantFactory(identity=world["identity"], scope=ScopeFactory(name=f"extra:{n}"), tool=world["tool"])
    with django_assert_max_num_queries(25) as captured:
        client.get(world["tool"].get_absolute_url())
    baseline = len(captured.captured_queries)
    for n in range(5, 15):
        GrantFactory(identity=world["identity"], scope=ScopeFactory(name=f"extra:{n}"), tool=world["tool"])
    with django_assert_max_num_queries(baseline):
        client.get(world["tool"].get_absolute_url())


def test_the_audit_page_shows_the_human_the_agent_and_the_mcp_tool(page_as, world):
    query = AuthorizationQuery(**BASE, agent="claude-code", action="deploy_release")
    decision = authorize(query=query, source="gw")
    page = page_as("security").get("/audit/?action=deploy_release")
    body = page.content.decode()
    assert "agent claude-code" in body and "<code>deploy_release</code>" in body and "alice" in body
    assert page_as("security").get("/audit/?action=other").content.decode().count("deploy_release") == 0
    assert decision.allowed


def _use(decision_id, **overrides):
    event = {
        "event_id": f"use-{decision_id}-{overrides.get('event_id', '')}",
        "occurred_at": timezone.now().isoformat(),
        "tool": "release-agent",
        "identity": "svc-release",
        "on_behalf_of": "alice",
        "scope": "deploy:release:write",
        "resource": "project:payments/api",
        "decision": decision_id,
        "outcome": "ok",
        "duration_ms": 12,
        "action": "deploy_release",
    }
    return {"events": [{**event, **overrides}]}


def test_usage_links_to_the_allow_it_followed(api_as, world):
    allow = authorize(query=AuthorizationQuery(**BASE), source="gw")
    response = api_as("gateway").post("/api/v1/events/", _use(allow.event_id), format="json")
    assert response.status_code == 201, response.content
    used = AccessEvent.objects.get(kind="observed")
    assert (used.decision_event_id, used.outcome, used.duration_ms, used.action) == (
        allow.event_id, "ok", 12, "deploy_release",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": "maybe"}, "outcome"),
        ({"duration_ms": -1}, "duration_ms"),
        ({"duration_ms": "12"}, "duration_ms"),
        ({"decision": "7"}, "decision"),
    ],
)
def test_malformed_usage_context_is_refused(api_as, world, change, field):
    allow = authorize(query=AuthorizationQuery(**BASE), source="gw")
    response = api_as("gateway").post("/api/v1/events/", _use(allow.event_id, **change), format="json")
    assert response.status_code == 400
    assert not AccessEvent.objects.filter(kind="observed").exists()


def test_usage_cannot_borrow_a_deny_another_gateways_answer_or_another_tools(api_as, world, security):
    deny = authorize(query=AuthorizationQuery(**{**BASE, "resource": "project:billing/x"}), source="gw")
    theirs = authorize(query=AuthorizationQuery(**BASE), source="another-gateway")
    mine = authorize(query=AuthorizationQuery(**BASE), source="gw")
    client = api_as("gateway")
    for decision_id, extra in ((deny.event_id, {}), (theirs.event_id, {}), (mine.event_id, {"identity": "svc-x"}),
                               (10**12, {})):  # fmt: skip
        response = client.post("/api/v1/events/", _use(decision_id, **extra), format="json")
        assert response.status_code == 400, (decision_id, response.content)
        assert response.json()["errors"][0]["field"] in ("decision", "identity")
    assert not AccessEvent.objects.filter(kind="observed").exists()


@pytest.mark.parametrize(
    "change",
    [{"on_behalf_of": "bob"}, {"resource": "project:billing/secrets"}, {"scope": "other:scope"}, {"on_behalf_of": ""}],
)
def test_usage_cannot_name_another_human_scope_or_resource_than_its_allow(api_as, world, change):
    from tests.factories import ScopeFactory, UserFactory

    UserFactory(username="bob")
    ScopeFactory(name="other:scope")
    allow = authorize(query=AuthorizationQuery(**BASE), source="gw")
    response = api_as("gateway").post("/api/v1/events/", _use(allow.event_id, **change), format="json")
    assert response.status_code == 400, response.content
    assert not AccessEvent.objects.filter(kind="observed").exists()


def test_one_allow_is_followed_by_one_usage_at_most(api_as, world):
    allow = authorize(query=AuthorizationQuery(**BASE), source="gw")
    client = api_as("gateway")
    assert client.post("/api/v1/events/", _use(allow.event_id, event_id="a"), format="json").status_code == 201
    again = client.post("/api/v1/events/", _use(allow.event_id, event_id="b"), format="json")
    assert again.status_code == 400 and "already followed" in again.content.decode()
    both = {"events": _use(allow.event_id, event_id="c")["events"] + _use(allow.event_id, event_id="d")["events"]}
    assert client.post("/api/v1/events/", both, format="json").status_code == 400
    assert AccessEvent.objects.filter(kind="observed", decision_event_id=allow.event_id).count() == 1
