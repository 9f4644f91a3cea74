"""POST /api/v1/authorize/batch/: a tool listing's question. The same rules as /authorize/, pair by pair; one event
of kind `list`; nothing granted, nothing counted as use."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.authorization import AuthorizationQuery, authorize
from inventory.models import AccessEvent
from inventory.usage.ingest import usage_rollup
from tests.approvals.authorize_helpers import BASE, gateway_token
from tests.factories import ScopeFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/authorize/batch/"
WHO = {"tool": "release-agent", "identity": "svc-release", "on_behalf_of": "alice"}


def _checks(*pairs):
    return [{"scope": scope, "resource": resource} for scope, resource in pairs]


def test_each_pair_gets_the_answer_authorize_gives(api_as, world):
    ScopeFactory(name="kb:read", risk="read")
    pairs = [
        ("deploy:release:write", "project:payments/api"),
        ("deploy:release:write", "project:billing/api"),
        ("kb:read", ""),
        ("no:such:scope", ""),
        ("deploy:release:write", "project:payments/../billing"),
    ]
    response = api_as("gateway").post(URL, {**WHO, "checks": _checks(*pairs)}, format="json")
    assert response.status_code == 200, response.content
    answers = response.json()["answers"]
    singles = [authorize(query=AuthorizationQuery(**{**BASE, "scope": s, "resource": r}), source="x") for s, r in pairs]
    assert [(a["decision"], a["reason"], a["grant"]) for a in answers] == [
        (d.decision, d.reason, d.grant_id) for d in singles
    ]
    assert answers[0]["reason"] == "allowed" and answers[1]["reason"] == "resource_outside_grant"
    assert [a["reason"] for a in answers[2:]] == ["no_active_grant", "unknown_scope", "invalid_resource"]


def test_a_listing_is_one_event_that_grants_and_uses_nothing(api_as, world):
    before_grants = world["grant"].last_used_at
    checks = [{"scope": "deploy:release:write", "any_resource": True}]
    body = {**WHO, "agent": "claude-code", "action": "tools/list", "checks": checks}
    response = api_as("gateway").post(URL, body, format="json")
    event = AccessEvent.objects.get(pk=response.json()["event_id"])
    assert AccessEvent.objects.count() == 1
    assert (event.kind, event.reason, event.agent, event.action) == ("list", "listed", "claude-code", "tools/list")
    assert event.tool == world["tool"] and event.on_behalf_of == world["alice"] and event.grant is None
    assert event.detail == {"answers": [["deploy:release:write", "", "allowed"]]}
    event_time = event.recorded_at
    usage_rollup(now=event_time + timedelta(minutes=5))
    world["grant"].refresh_from_db()
    world["identity"].refresh_from_db()
    assert world["grant"].last_used_at == before_grants and world["identity"].last_used_at is None


def test_any_resource_asks_whether_some_resource_could_be_allowed(api_as, world):
    checks = [{"scope": "deploy:release:write", "any_resource": True}, {"scope": "deploy:release:write"}]
    answers = api_as("gateway").post(URL, {**WHO, "checks": checks}, format="json").json()["answers"]
    assert [a["reason"] for a in answers] == ["allowed", "resource_outside_grant"]
    world["grant"].approvals = 0
    world["grant"].approved_by_policy = False
    world["grant"].save()
    answers = api_as("gateway").post(URL, {**WHO, "checks": checks}, format="json").json()["answers"]
    assert answers[0]["reason"] == "grant_unapproved"


def test_a_revoked_grant_disappears_from_the_very_next_listing(api_as, world):
    body = {**WHO, "checks": _checks(("deploy:release:write", "project:payments/api"))}
    assert api_as("gateway").post(URL, body, format="json").json()["answers"][0]["decision"] == "allow"
    world["grant"].status = "revoked"
    world["grant"].revoked_at = timezone.now()
    world["grant"].save()
    assert api_as("gateway").post(URL, body, format="json").json()["answers"][0]["reason"] == "grant_revoked"


def test_a_token_limited_to_another_tool_is_refused_per_pair(world, client):
    ToolFactory(slug="other-tool")
    UserFactory(username="gw2", roles=["gateway"])
    token = gateway_token("gw2", "other-tool")
    body = {**WHO, "checks": _checks(("deploy:release:write", "project:payments/api"))}
    response = client.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.json()["answers"][0]["reason"] == "gateway_not_allowed_for_tool"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {**WHO},
        {**WHO, "checks": []},
        {**WHO, "checks": "deploy"},
        {**WHO, "checks": [{"resource": "x"}]},
        {**WHO, "checks": [{"scope": "a", "resource": 7}]},
        {**WHO, "checks": [{"scope": "a"}] * 201},
        {"tool": "release-agent", "checks": [{"scope": "a"}]},
        {**WHO, "agent": ["x"], "checks": [{"scope": "a"}]},
        {**WHO, "checks": [{"scope": "a", "any_resource": "yes"}]},
        {**WHO, "checks": [{"scope": "a", "any_resource": 1}]},
        {**WHO, "checks": [{"scope": "a", "any_resource": None}]},
        {**WHO, "checks": [{"scope": "a", "resource": None}]},
    ],
)
def test_a_malformed_listing_is_a_400_and_records_nothing(api_as, world, body):
    response = api_as("gateway").post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert all(isinstance(v, list) for v in response.json().values())
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("owner", 403), ("other_owner", 403), ("manager", 403), ("security", 200), ("gateway", 200)],
)
def test_who_may_ask_for_a_listing(api_as, world, role, status):
    body = {**WHO, "checks": _checks(("deploy:release:write", ""))}
    assert api_as(role).post(URL, body, format="json").status_code == status
