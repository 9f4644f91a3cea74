"""Issue 17: access events partitioned by month on PostgreSQL; the retention job archives a closed month, verifies it,
then detaches and drops its partition, which the database refuses to anyone else. SQLite keeps one table."""

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import TestCase

from inventory.audit import partitions, retention, runs, sealing
from inventory.audit.anchor import get_anchor
from inventory.audit.verify import verify
from inventory.models import AccessEvent, ArchivedPartition, AuditArchive, AuditEntry

from .helpers import events

pytestmark = pytest.mark.django_db
FEB, MAR, APR = date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)
LATER = datetime(2026, 6, 15, tzinfo=UTC)


def _table_of(event: AccessEvent) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM inventory_accessevent WHERE id = %s", [event.pk])
        return cursor.fetchone()[0]


def _month_of_events(month: date, day: int, n: int) -> list[AccessEvent]:
    """n events recorded on that day, sealed (and anchored) a minute later."""
    at = datetime(month.year, month.month, day, 12, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        made = events(n)
    with time_machine.travel(at + timedelta(minutes=1)), TestCase.captureOnCommitCallbacks(execute=True):
        sealing.seal_all()
    return made


@pytest.fixture
def archive_dir(settings, tmp_path):
    settings.AUDIT_ARCHIVE_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "archive")},
    }
    return tmp_path / "archive"


@pytest.fixture
def three_months(db):
    if partitions.is_partitioned():
        partitions.ensure_months(FEB, APR)
    return {month: _month_of_events(month, 10, 3) for month in (FEB, MAR, APR)}


def _partition(month: date) -> str:
    return f"inventory_accessevent_y{month:%Y}m{month:%m}"


def _verified() -> None:
    """An incremental verification, as beat runs every five minutes: it moves the checkpoint the drop relies on."""
    with time_machine.travel(LATER):
        _run, result = runs.verification_now(kind="incremental", requested_by="test")
    assert result.ok, result.problems


def _run_job(older_than_months: int = 1, **kwargs):
    _verified()
    with time_machine.travel(LATER), TestCase.captureOnCommitCallbacks(execute=True):
        return retention.archive_closed_months(older_than_months=older_than_months, **kwargs)


# PostgreSQL ---------------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_events_go_to_their_months_partition_and_the_rest_to_the_default(three_months):
    assert _table_of(three_months[MAR][0]) == _partition(MAR)
    with time_machine.travel(datetime(2019, 5, 5, tzinfo=UTC), tick=False):
        stray = events(1)[0]  # no partition for that month: kept, never refused
    assert _table_of(stray) == "inventory_accessevent_default"
    names = [p.name for p in partitions.partitions()]
    assert names[-1] == "inventory_accessevent_default" and {_partition(m) for m in (FEB, MAR, APR)} <= set(names)


@pytest.mark.postgres
def test_the_job_archives_verifies_then_drops_closed_months(three_months, archive_dir):
    _run_job()
    assert {(a.month, a.rows) for a in AuditArchive.objects.filter(stream="events")} >= {(FEB, 3), (MAR, 3), (APR, 3)}
    dropped = {p.table_name: p for p in ArchivedPartition.objects.all()}
    assert set(dropped) >= {_partition(m) for m in (FEB, MAR, APR)}
    assert dropped[_partition(MAR)].rows == 3 and dropped[_partition(MAR)].archives
    # The rows are gone with their partitions, the partitions for the coming months exist, the default is kept.
    assert not AccessEvent.objects.filter(pk__in=[e.pk for month in three_months.values() for e in month]).exists()
    names = {p.name for p in partitions.partitions()}
    assert not names & {_partition(m) for m in (FEB, MAR, APR)}
    assert {_partition(date(2026, 7, 1)), "inventory_accessevent_default"} <= names
    # Audited, and in the anchor.
    assert AuditEntry.objects.filter(action="audit.partition_dropped").count() >= 3
    assert {r["table"] for r in get_anchor().records() if r.get("kind") == "partition_dropped"} >= {_partition(MAR)}
    # What remains still verifies: the archived batches' rows are gone on purpose.
    with time_machine.travel(LATER):
        sealing.seal_all()
        result = verify()
    assert result.ok, result.problems
    # And the archive itself verifies offline, with the key only.
    march = AuditArchive.objects.get(stream="events", month=MAR)
    out = StringIO()
    call_command("verify_audit", archive=str(archive_dir / march.name), anchor=str(get_anchor().path), stdout=out)
    assert "OK: 3 events rows of 2026-03 verified" in out.getvalue()


@pytest.mark.postgres
def test_a_partition_is_kept_until_its_rows_are_archived(three_months, archive_dir):
    _run_job(drop=False)
    april = next(p for p in partitions.partitions() if p.name == _partition(APR))
    # Rows of April written after it was archived (a late writer inside the month): not in any archive.
    with time_machine.travel(datetime(2026, 4, 29, tzinfo=UTC), tick=False):
        events(1)
    with pytest.raises(partitions.NotDroppable, match="not in a verified archive"):
        partitions.drop_partition(april)
    current = next(p for p in partitions.partitions() if p.end and p.start and p.start <= datetime.now(UTC) < p.end)
    with pytest.raises(partitions.NotDroppable, match="not closed"):
        partitions.drop_partition(current)
    assert not ArchivedPartition.objects.exists()


@pytest.mark.postgres
def test_a_partition_is_kept_until_verification_has_passed_its_archived_batches(three_months, archive_dir):
    with time_machine.travel(LATER), TestCase.captureOnCommitCallbacks(execute=True):
        retention.archive_closed_months(older_than_months=1)  # no verification ran: archived, nothing dropped
    assert AuditArchive.objects.filter(stream="events").count() == 3 and not ArchivedPartition.objects.exists()
    _verified()
    with time_machine.travel(LATER), TestCase.captureOnCommitCallbacks(execute=True):
        retention.archive_closed_months(older_than_months=1)
    assert ArchivedPartition.objects.filter(table_name=_partition(MAR)).exists()


@pytest.mark.postgres
def test_an_archive_changed_in_the_storage_or_forged_in_the_database_keeps_the_partition(three_months, archive_dir):
    _run_job(drop=False)
    march = AuditArchive.objects.get(stream="events", month=MAR)
    path = archive_dir / march.name
    original = path.read_bytes()
    path.write_bytes(gzip.compress(b'{"kind": "archive"}\n'))
    part = next(p for p in partitions.partitions() if p.name == _partition(MAR))
    with pytest.raises(partitions.NotDroppable, match="not the one verified"):
        partitions.drop_partition(part)
    path.write_bytes(original)
    # A database writer moves the archive's MAC-covered range by hand: no longer a verified archive.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_auditarchive SET last_id = last_id + 1 WHERE id = %s", [march.pk])
    with pytest.raises(partitions.NotDroppable, match="not in a verified archive"):
        partitions.drop_partition(part)
    assert _partition(MAR) in {p.name for p in partitions.partitions()}


REFUSED = [
    ("DELETE FROM {part}", "append-only: DELETE refused"),
    ("UPDATE {part} SET reason = 'edited'", "append-only: UPDATE refused"),
    ("TRUNCATE {part}", "append-only: TRUNCATE refused"),
    ("ALTER TABLE inventory_accessevent DETACH PARTITION {part}", "not archived: DETACH refused"),
    ("DROP TABLE {part}", "not archived: DROP refused"),
    ("ALTER TABLE {part} DISABLE TRIGGER USER", "cannot be disabled"),
    ("DROP TABLE inventory_accessevent CASCADE", "not archived: DROP refused"),
    # Renamed or moved first, a partition would no longer be known by name when detached and dropped.
    ("ALTER TABLE {part} RENAME TO inventory_elsewhere", "cannot be renamed or moved"),
    ("CREATE SCHEMA IF NOT EXISTS attic; ALTER TABLE {part} SET SCHEMA attic", "cannot be renamed or moved"),
    ("ALTER TABLE inventory_accessevent RENAME TO inventory_elsewhere", "cannot be renamed or moved"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("statement", "message"), REFUSED)
def test_a_database_writer_cannot_remove_a_partition_that_was_not_archived(three_months, statement, message):
    with pytest.raises(DatabaseError, match=message), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own inserts are in this transaction
        cursor.execute(statement.format(part=_partition(MAR)))
    assert AccessEvent.objects.filter(pk=three_months[MAR][0].pk).exists()


@pytest.mark.postgres
def test_a_drop_past_the_guard_with_a_forged_record_is_still_named_by_verify(three_months, archive_dir):
    """Whoever writes the guard's record by hand gets the partition dropped, not past verification: only an archive
    whose MAC holds under the seal key excuses missing rows."""
    part = _partition(MAR)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "INSERT INTO inventory_archivedpartition (table_name, range_start, range_end, rows, archives, created_at) "
            "VALUES (%s, now(), now(), 0, '[]', now())",
            [part],
        )
        cursor.execute(f"ALTER TABLE inventory_accessevent DETACH PARTITION {part}")
        cursor.execute(f"DROP TABLE {part}")
    with time_machine.travel(LATER):
        result = verify()
    assert not result.ok
    assert result.problem == f"entry {three_months[MAR][0].pk} was deleted"


@pytest.mark.postgres
def test_a_request_id_is_unique_within_its_months_partition(three_months):
    with time_machine.travel(datetime(2026, 3, 20, tzinfo=UTC), tick=False):
        first = AccessEvent(occurred_at=datetime.now(UTC), source="gw", request_id="r-1", decision="deny", reason="x")
        again = AccessEvent(occurred_at=datetime.now(UTC), source="gw", request_id="r-1", decision="deny", reason="y")
        AccessEvent.objects.bulk_create([first], ignore_conflicts=True)
        AccessEvent.objects.bulk_create([again], ignore_conflicts=True)
    assert list(AccessEvent.objects.filter(request_id="r-1").values_list("reason", flat=True)) == ["x"]
    later = time_machine.travel(datetime(2026, 3, 21, tzinfo=UTC), tick=False)
    with pytest.raises(DatabaseError, match="duplicate key"), transaction.atomic(), later:
        AccessEvent.objects.create(occurred_at=datetime.now(UTC), source="gw", request_id="r-1", decision="deny")


# SQLite -------------------------------------------------------------------------------------------------------------


def test_without_partitions_the_job_archives_and_keeps_the_rows(archive_dir):
    """SQLite (make run), or PostgreSQL with dropping turned off: nothing is partitioned or dropped."""
    if connection.vendor == "postgresql":
        partitions.ensure_months(FEB, APR)
    made = {month: _month_of_events(month, 10, 2) for month in (FEB, MAR)}
    _run_job(drop=False)
    assert AuditArchive.objects.filter(stream="events").count() == 2
    assert AccessEvent.objects.filter(pk__in=[e.pk for rows in made.values() for e in rows]).count() == 4
    assert not ArchivedPartition.objects.exists()
    if connection.vendor != "postgresql":
        assert not partitions.is_partitioned() and partitions.partitions() == []
        assert partitions.ensure_ahead() == [] and partitions.drop_archived(before=date(2030, 1, 1)) == []


def _lines(path) -> list[dict]:
    with gzip.open(path) as handle:
        return [json.loads(line) for line in handle]
