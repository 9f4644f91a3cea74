"""Replayed request ids are decided afresh, per gateway and per question; gateway tokens are limited to their tools."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.models import AccessEvent
from tests.approvals.authorize_helpers import ask, gateway_token
from tests.approvals.test_authorize import _expire_grant_in_time, _one_approver_for_write
from tests.factories import (
    CredentialFactory,
    ToolFactory,
)

pytestmark = pytest.mark.django_db


def test_a_replayed_request_id_is_decided_afresh_and_recorded(api_as, world):
    first = ask(api_as("gateway"), request_id="gw-1")
    again = ask(api_as("gateway"), request_id="gw-1")
    # While the grant is live the answer is the same; the replay is recorded as its own event, linked to the first.
    assert (again["decision"], again["grant"], again["replay_of"]) == ("allow", first["grant"], first["event_id"])
    assert again["event_id"] != first["event_id"]
    world["grant"].status = "revoked"
    world["grant"].save()
    # Reproduced in issue 11: a replay after the revocation returned the old allow and wrote nothing.
    after = ask(api_as("gateway"), request_id="gw-1")
    assert (after["decision"], after["reason"], after["replay_of"]) == ("deny", "grant_revoked", first["event_id"])
    assert AccessEvent.objects.filter(pk=after["event_id"], reason="grant_revoked").exists()
    assert AccessEvent.objects.filter(request_id="gw-1").count() == 1


def test_a_replay_after_expiry_or_a_policy_change_is_not_allowed(api_as, world):
    first = ask(api_as("gateway"), request_id="gw-5")
    assert first["decision"] == "allow"
    _one_approver_for_write(world)
    assert ask(api_as("gateway"), request_id="gw-5")["reason"] == "grant_below_policy"
    _expire_grant_in_time(world)
    assert ask(api_as("gateway"), request_id="gw-5")["reason"] == "grant_expired"


def test_a_token_limited_to_one_tool_cannot_replay_another_tools_allow(world, gateway):
    """Reproduced in issue 11: a second token of the same gateway, limited to another tool, replayed an allow."""
    ToolFactory(owner=world["tool"].owner, slug="other-tool")
    unlimited, limited = APIClient(), APIClient()
    unlimited.credentials(HTTP_AUTHORIZATION=f"Token {gateway_token('gw')}")
    limited.credentials(HTTP_AUTHORIZATION=f"Token {gateway_token('gw', 'other-tool')}")
    assert ask(unlimited, request_id="gw-7")["decision"] == "allow"
    replay = ask(limited, request_id="gw-7")
    assert (replay["decision"], replay["reason"]) == ("deny", "gateway_not_allowed_for_tool")


def test_request_id_reused_for_another_question_is_denied(api_as, world):
    assert ask(api_as("gateway"), request_id="gw-9")["decision"] == "allow"
    other = ask(api_as("gateway"), request_id="gw-9", tool="no-such-tool")
    assert (other["decision"], other["reason"]) == ("deny", "request_id_reused")
    assert AccessEvent.objects.filter(pk=other["event_id"], reason="request_id_reused").exists()


def test_observed_events_never_answer_an_authorization(api_as, world):
    event = {"event_id": "pre-1", "occurred_at": "2026-11-01T00:00:00Z", "identity": "svc-release", "tool": "nope"}
    assert api_as("gateway").post("/api/v1/events/", {"events": [event]}, format="json").status_code == 201
    answer = ask(api_as("gateway"), request_id="pre-1", tool="nope")
    assert (answer["decision"], answer["reason"]) == ("deny", "unknown_tool")


def test_credential_named_by_id_is_recorded(api_as, world):
    answer = ask(api_as("gateway"), credential=str(world["credential"].pk))
    assert answer["decision"] == "allow"
    assert AccessEvent.objects.get(pk=answer["event_id"]).credential == world["credential"]
    revoked = CredentialFactory(identity=world["identity"], revoked_at=timezone.now())
    assert ask(api_as("gateway"), credential=str(revoked.pk))["reason"] == "credential_revoked"


def test_gateway_token_limited_to_its_tools(gateway, world, owner):
    ToolFactory(owner=owner, slug="other-tool")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {gateway_token('gw', 'other-tool')}")
    assert ask(client)["reason"] == "gateway_not_allowed_for_tool"
    client.credentials(HTTP_AUTHORIZATION=f"Token {gateway_token('gw', 'release-agent')}")
    assert ask(client)["decision"] == "allow"
    client.credentials(HTTP_AUTHORIZATION=f"Token {gateway_token('gw')}")
    assert ask(client)["decision"] == "allow"
