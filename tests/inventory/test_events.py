"""Observed usage: batches up to 1,000, idempotent by event id, all or nothing, within a gateway token's tool limit;
the last-used roll-up, which leaves the newest events for a grace period."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import GatewayToolLimit
from inventory.audit.record import GRACE
from inventory.models import AccessEvent, UsageWatermark
from inventory.usage import ingest as usage
from tests.factories import CredentialFactory, GrantFactory, IdentityFactory, ScopeFactory, ToolFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _settled():
    """A roll-up clock past the grace period of everything written so far."""
    return timezone.now() + GRACE + timedelta(seconds=1)


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
    assert usage.usage_rollup(now=_settled()) == 3
    for key in ("grant", "identity", "credential"):
        used[key].refresh_from_db()
    latest = T0 + timedelta(minutes=2)
    assert used["grant"].last_used_at == latest
    assert used["identity"].last_used_at == latest
    # A newer time already recorded is never moved back.
    assert used["credential"].last_used_at == T0 + timedelta(days=5)
    assert usage.usage_rollup(now=_settled()) == 0
    assert UsageWatermark.objects.get(name="usage").last_event_id == AccessEvent.objects.latest("pk").pk


def test_denied_decisions_do_not_count_as_use(used):
    AccessEvent.objects.create(
        occurred_at=T0 + timedelta(days=40), source="gw", identity=used["identity"], grant=used["grant"],
        decision="deny", reason="resource_outside_grant",
    )  # fmt: skip
    usage.usage_rollup(now=_settled())
    used["grant"].refresh_from_db()
    assert used["grant"].last_used_at is None


@pytest.mark.parametrize("rows", [10, 300])
def test_rollup_is_set_based(used, rows, django_assert_max_num_queries):
    usage.events_ingest(source="gw", events=[_event(i) for i in range(rows)])
    # One pass over the window and one more that finds nothing (each also looks for the first event still in its
    # grace period), and the changed identities and tools queued for targeted detection (issue 18, two INSERT ...
    # SELECT): the same statements for 10 rows or 300.
    with django_assert_max_num_queries(22):
        assert usage.usage_rollup(now=_settled()) == rows


@pytest.mark.parametrize("rows", [10, 500])
def test_ingest_is_set_based(used, rows):
    with CaptureQueriesContext(connection) as captured:
        usage.events_ingest(source="gw", events=[_event(i) for i in range(rows)])
    # Lookups are one query per kind; inserts are batched (SQLite caps the variables per statement, hence several).
    lookups = [q for q in captured.captured_queries if not q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(lookups) <= 9
    assert AccessEvent.objects.count() == rows


def test_rollup_leaves_events_younger_than_the_grace_period(used):
    usage.events_ingest(source="gw", events=[_event(i) for i in range(3)])
    assert usage.usage_rollup() == 0
    assert UsageWatermark.objects.get(name="usage").last_event_id == 0
    assert usage.usage_rollup(now=timezone.now() + GRACE - timedelta(seconds=1)) == 0
    assert usage.usage_rollup(now=_settled()) == 3


def _event_row(pk: int, used: dict, when: datetime) -> AccessEvent:
    return AccessEvent.objects.create(
        pk=pk, occurred_at=when, source="gw", kind="observed", tool=used["tool"], identity=used["identity"],
        scope=used["scope"], grant=used["grant"], decision="allow", reason="observed",
    )  # fmt: skip


def test_an_event_committed_late_is_rolled_up_not_skipped(used):
    """Event `late` took its id before `on_time` but committed after it: the roll-up must not pass `late`'s id
    before `late` is visible. Ids are set by hand, beyond the sequence, to stage the order."""
    now = datetime.now(UTC)
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        early = _event_row(pk=1, used=used, when=T0)  # settled long ago
    base = early.pk + 1000
    with time_machine.travel(now, tick=False):
        on_time = _event_row(pk=base + 2, used=used, when=T0 + timedelta(hours=2))
    # Five seconds later the job runs: `on_time` is inside the grace period, so the watermark stops before it.
    with time_machine.travel(now + timedelta(seconds=5), tick=False):
        assert usage.usage_rollup() == 1
    assert UsageWatermark.objects.get(name="usage").last_event_id == early.pk
    with time_machine.travel(now, tick=False):
        _event_row(pk=base + 1, used=used, when=T0 + timedelta(hours=3))  # recorded then, visible only now
    with time_machine.travel(now + GRACE + timedelta(seconds=1), tick=False):
        assert usage.usage_rollup() == 2
    assert UsageWatermark.objects.get(name="usage").last_event_id == on_time.pk
    used["grant"].refresh_from_db()
    assert used["grant"].last_used_at == T0 + timedelta(hours=3)  # the late event counted


def test_rollup_stops_at_the_first_young_event_even_if_older_ones_follow(used):
    """The rolled-up range stays contiguous: a settled event after a young one waits for it."""
    base = (AccessEvent.objects.aggregate(m=Max("pk"))["m"] or 0) + 1000
    now = datetime.now(UTC)
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        first = _event_row(pk=base + 1, used=used, when=T0)
    with time_machine.travel(now, tick=False):
        _event_row(pk=base + 2, used=used, when=T0)
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        _event_row(pk=base + 3, used=used, when=T0)
    with time_machine.travel(now + timedelta(seconds=5), tick=False):
        assert usage.usage_rollup() == 1
    assert UsageWatermark.objects.get(name="usage").last_event_id == first.pk


# A gateway token limited to some tools reports usage only for them, as it may only ask /authorize/ about them.


@pytest.fixture
def other(owner):
    tool = ToolFactory(owner=owner, slug="other")
    identity = IdentityFactory(owner=owner, name="svc-other")
    tool.bindings.create(identity=identity)
    return {"tool": tool, "identity": identity}


def _as_token(username: str, *tools: str) -> APIClient:
    out = StringIO()
    args = [username, "--days", "1", *[a for t in tools for a in ("--tool", t)]]
    call_command("issue_token", *args, stdout=out, stderr=StringIO())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    return client


def _post(client: APIClient, events: list):
    return client.post("/api/v1/events/", {"events": events}, format="json")


def test_limited_token_reports_for_its_tool(gateway, used, other):
    response = _post(_as_token("gw", "bot"), [_event(1), _event(2)])
    assert response.status_code == 201 and response.json()["created"] == 2


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"tool": "other", "identity": "svc-other"}, "tool", "not a tool this token fronts"),
        ({"identity": "svc-other"}, "identity", "not bound to bot"),  # its tool, another tool's identity
        ({"identity": "svc-nobody"}, "identity", "not bound to bot"),
        ({"tool": "shadow-ai"}, "tool", "not a tool this token fronts"),
        ({"tool": ""}, "tool", "required from a token limited to some tools"),
    ],
)
def test_limited_token_is_refused_for_anything_else_and_nothing_is_stored(gateway, used, other, extra, field, message):
    event = _event(2, **extra)
    if not event["tool"]:
        del event["tool"]
    response = _post(_as_token("gw", "bot"), [_event(1), event])
    assert response.status_code == 403
    assert response.json() == {"errors": [{"row": 1, "field": field, "message": message}]}
    assert not AccessEvent.objects.exists()
    usage.usage_rollup(now=_settled())
    other["identity"].refresh_from_db()
    assert other["identity"].last_used_at is None


def test_token_limited_to_no_tools_reports_nothing(gateway, used):
    client = _as_token("gw", "bot")
    GatewayToolLimit.objects.get().tools.clear()
    assert _post(client, [_event(1)]).status_code == 403
    assert not AccessEvent.objects.exists()


def test_malformed_batch_from_a_limited_token_is_still_a_400(gateway, used, other):
    response = _post(_as_token("gw", "bot"), [_event(1, tool="other"), _event(2, occurred_at="yesterday")])
    assert response.status_code == 400


def test_unlimited_token_reports_for_any_tool(gateway, used, other):
    events = [_event(1), _event(2, tool="other", identity="svc-other"), _event(3, tool="shadow-ai"), _event(4, tool="")]
    response = _post(_as_token("gw"), events)
    assert response.status_code == 201 and response.json()["created"] == 4


def test_another_users_limit_does_not_apply(gateway, security, used, other):
    _as_token("gw", "bot")
    response = _post(_as_token("sec"), [_event(1, tool="other", identity="svc-other")])
    assert response.status_code == 201
