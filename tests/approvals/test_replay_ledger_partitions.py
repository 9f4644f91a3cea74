"""Replays with the access events partitioned by month (PostgreSQL, inventory/audit/partitions.py).

A request id is unique per gateway account within a month's partition: the partition's own unique index is what the
decision statement's ON CONFLICT sees, and it is dropped with its month, so nothing needs pruning. Within a month a
repeat is decided afresh and names the first (test_authorize_replays.py holds the rest); across the turn of a month,
the new month has not seen the id and records it as a first, while a repeat still names the oldest decision."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from inventory.audit import partitions
from inventory.models import AccessEvent
from tests.approvals.authorize_helpers import ask

pytestmark = pytest.mark.django_db


def _turn_of_next_month() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)


def test_a_replay_in_the_same_month_names_the_first_and_is_recorded(api_as, world):
    first = ask(api_as("gateway"), request_id="gw-month-1")
    again = ask(api_as("gateway"), request_id="gw-month-1")
    assert (again["replay_of"], again["decision"]) == (first["event_id"], first["decision"])
    assert AccessEvent.objects.filter(request_id="gw-month-1").count() == 1
    assert AccessEvent.objects.filter(pk=again["event_id"], request_id="").exists()


def test_a_replay_across_the_turn_of_a_month(api_as, world):
    turn = _turn_of_next_month()
    partitions.ensure_months(turn.date() - timedelta(days=1), turn.date())
    with time_machine.travel(turn - timedelta(seconds=1), tick=False):
        first = ask(api_as("gateway"), request_id="gw-turn")
    with time_machine.travel(turn + timedelta(seconds=1), tick=False):
        second = ask(api_as("gateway"), request_id="gw-turn")
        third = ask(api_as("gateway"), request_id="gw-turn")
        reused = ask(api_as("gateway"), request_id="gw-turn", tool="no-such-tool")
    if partitions.is_partitioned():
        # The new month's partition has not seen the id: recorded as a first of that month.
        assert second.get("replay_of") is None
        assert AccessEvent.objects.filter(request_id="gw-turn").count() == 2
    else:
        assert second.get("replay_of") == first["event_id"]
    # A repeat within the new month, and a reuse for another question, name the oldest decision.
    assert third["replay_of"] == first["event_id"]
    assert (reused["reason"], reused["replay_of"]) == ("request_id_reused", first["event_id"])
