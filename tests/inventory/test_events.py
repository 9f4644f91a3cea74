"""Observed usage: batches up to 1,000, idempotent by event id, all or nothing; the last-used roll-up."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import usage
from inventory.models import AccessEvent, UsageWatermark
from tests.factories import CredentialFactory, GrantFactory, IdentityFactory, ScopeFactory, ToolFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def used(owner):
    tool = ToolFactory(owner=owner, slug="bot")
    identity = IdentityFactory(owner=owner, name="svc-bot", last_used_at=T0 - timedelta(days=30))
    tool.bindings.create(identity=identity)
    scope = ScopeFactory(name="kb:read")
    grant = GrantFactory(identity=identity, scope=scope, tool=tool, last_used_at=None)
    credential = CredentialFactory(identity=identity, last_used_at=T0 + timedelta(days=5))
    return {"tool": tool, "identity": identity, "scope": scope, "grant": grant, "credential": credential}


def _event(i: int, **extra) -> dict:
    event = {"event_id": f"cloudtrail-{i}", "occurred_at": (T0 + timedelta(minutes=i)).isoformat()}
    return event | {"tool": "bot", "identity": "svc-bot", "scope": "kb:read", "on_behalf_of": "owner"} | extra


def test_batch_is_stored_and_idempotent(api_as, used):
    batch = {"events": [_event(i) for i in range(5)]}
    first = api_as("gateway").post("/api/v1/events/", batch, format="json")
    assert first.status_code == 201 and first.json() == {"received": 5, "created": 5, "duplicates": 0}
    again = api_as("gateway").post("/api/v1/events/", batch, format="json")
    assert again.status_code == 200 and again.json() == {"received": 5, "created": 0, "duplicates": 5}
    stored = AccessEvent.objects.filter(kind="observed")
    assert stored.count() == 5
    assert {e.grant_id for e in stored} == {used["grant"].pk}
    assert {e.on_behalf_of.username for e in stored} == {"owner"}


@pytest.mark.parametrize(
    "events",
    [
        [],
        [_event(i) for i in range(1001)],
        [_event(1), _event(1)],
        [_event(1), _event(2, occurred_at="yesterday")],
        [_event(1), _event(2, occurred_at="2026-11-01T12:00:00")],  # no zone
        [_event(1), _event(2, occurred_at="2999-01-01T00:00:00Z")],  # future
        [_event(1), _event(2, identity="")],
        [_event(1), "not an object"],
        [_event(1), _event(2, resource=["x"])],
    ],
)
def test_bad_batches_change_nothing(api_as, used, events):
    response = api_as("gateway").post("/api/v1/events/", {"events": events}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("owner", 403), ("manager", 403), ("other_owner", 403), ("security", 201), ("gateway", 201)],
)
def test_who_may_report_usage(api_as, used, role, status):
    assert api_as(role).post("/api/v1/events/", {"events": [_event(1)]}, format="json").status_code == status


def test_unknown_references_are_kept_as_text(api_as, used):
    api_as("gateway").post(
        "/api/v1/events/", {"events": [_event(1, tool="shadow-ai", identity="svc-x")]}, format="json"
    )
    event = AccessEvent.objects.get()
    assert event.tool is None and event.tool_ref == "shadow-ai" and event.identity_ref == "svc-x"


def test_rollup_updates_last_used_with_the_latest_time(used):
    usage.events_ingest(source="gw", events=[_event(i, credential=used["credential"].fingerprint) for i in range(3)])
    assert usage.usage_rollup() == 3
    for key in ("grant", "identity", "credential"):
        used[key].refresh_from_db()
    latest = T0 + timedelta(minutes=2)
    assert used["grant"].last_used_at == latest
    assert used["identity"].last_used_at == latest
    # A newer time already recorded is never moved back.
    assert used["credential"].last_used_at == T0 + timedelta(days=5)
    assert usage.usage_rollup() == 0
    assert UsageWatermark.objects.get(name="usage").last_event_id == AccessEvent.objects.latest("pk").pk


def test_denied_decisions_do_not_count_as_use(used):
    AccessEvent.objects.create(
        occurred_at=T0 + timedelta(days=40), source="gw", identity=used["identity"], grant=used["grant"],
        decision="deny", reason="resource_outside_grant",
    )  # fmt: skip
    usage.usage_rollup()
    used["grant"].refresh_from_db()
    assert used["grant"].last_used_at is None


@pytest.mark.parametrize("rows", [10, 300])
def test_rollup_is_set_based(used, rows, django_assert_max_num_queries):
    usage.events_ingest(source="gw", events=[_event(i) for i in range(rows)])
    # One pass over the window and one more that finds nothing: the same statements for 10 rows or 300.
    with django_assert_max_num_queries(18):
        assert usage.usage_rollup() == rows


@pytest.mark.parametrize("rows", [10, 500])
def test_ingest_is_set_based(used, rows):
    with CaptureQueriesContext(connection) as captured:
        usage.events_ingest(source="gw", events=[_event(i) for i in range(rows)])
    # Lookups are one query per kind; inserts are batched (SQLite caps the variables per statement, hence several).
    lookups = [q for q in captured.captured_queries if not q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(lookups) <= 9
    assert AccessEvent.objects.count() == rows
