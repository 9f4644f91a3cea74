"""Tamper evidence beyond the chain itself: TRUNCATE refused, the anchor outside the database (missing tail, deleted or
re-sealed batches), watched unsealed entries, gaps between batches, key rotation and sealing lag."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from inventory.audit import hashes, sealing
from inventory.audit.anchor import FileAnchor
from inventory.audit.verify import verify
from inventory.models import AccessEvent, AuditBatch, AuditEntry
from tests.inventory.test_sealing import _entries, _raw, _seal, _seal_job

pytestmark = pytest.mark.django_db


def _anchor_records(settings, kind: str) -> list[dict]:
    return [r for r in FileAnchor(settings.AUDIT_ANCHOR_PATH).records() if r["kind"] == kind]


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["inventory_auditentry", "inventory_accessevent", "inventory_auditbatch"])
def test_postgres_refuses_truncate(table):
    _entries(1)
    AccessEvent.objects.create(occurred_at=timezone.now(), source="gw", decision="deny", reason="x")
    _seal()
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no queued foreign-key checks
        cursor.execute(f"TRUNCATE {table} CASCADE")


def test_truncated_batches_resealed_over_edited_history_are_named():
    entries = _entries(3)
    _seal()
    _raw("UPDATE inventory_auditentry SET comment = 'edited' WHERE id = %s", [entries[1].pk])
    _raw("TRUNCATE inventory_auditbatch" if connection.vendor == "postgresql" else "DELETE FROM inventory_auditbatch")
    # The real job, with the real key, seals the edited rows again: the chain in the database is consistent.
    assert _seal() == 3
    result = verify()
    assert not result.ok and result.batch == 1 and result.stream == "audit"
    assert result.problem == "batch 1's digest differs from the anchored one: history was re-sealed"


def test_deleting_the_newest_batch_is_named():
    _entries(3)
    _seal()
    _entries(2)
    _seal()
    _raw("DELETE FROM inventory_auditbatch WHERE stream = 'audit' AND seq = 2")
    result = verify()
    assert not result.ok and result.batch == 2
    assert result.problem == "batch 2 is in the anchor but missing from the database"


def test_deleting_the_newest_batch_with_its_entries_is_named():
    _entries(3)
    _seal()
    _entries(2)
    _seal()
    batch = AuditBatch.objects.get(stream="audit", seq=2)
    _raw("DELETE FROM inventory_auditentry WHERE id >= %s", [batch.first_id])
    _raw("DELETE FROM inventory_auditbatch WHERE id = %s", [batch.pk])
    result = verify()
    assert not result.ok and result.batch == 2
    assert result.problem == "batch 2 is in the anchor but missing from the database"
    # New entries sealed as a new batch 2 by the normal job do not paper over it.
    _entries(1)
    _seal()
    result = verify()
    assert not result.ok and result.problem == "batch 2's digest differs from the anchored one: history was re-sealed"


def test_deleting_watched_unsealed_entries_is_named(settings, caplog):
    _entries(3)
    _seal()
    recent = _entries(3)
    assert _seal_job() == 0  # inside the grace period: watched, not sealed
    watch = [w for w in _anchor_records(settings, "watch") if w["stream"] == "audit"][-1]
    assert watch["ids"] == [[recent[0].pk, recent[2].pk]] and len(watch["tags"]) == 3 * 8
    _raw("DELETE FROM inventory_auditentry WHERE id >= %s", [recent[1].pk])
    result = verify()
    assert not result.ok and result.first_bad == recent[1].pk
    assert result.problem.startswith(f"entry {recent[1].pk} was observed unsealed at {watch['at']}")
    assert result.problem.endswith("and later deleted")
    # The next seal run checks the watch too (and says so in the log); once later entries are sealed, the deleted
    # ids are recorded as absent from the batch, and verify still names them.
    _entries(1)
    assert _seal() == 2
    assert f"entry {recent[1].pk} was observed unsealed" in caplog.text
    assert AuditBatch.objects.get(stream="audit", seq=2).missing_ids == [[recent[1].pk, recent[2].pk]]
    result = verify()
    assert not result.ok and result.first_bad == recent[1].pk and "observed unsealed" in result.problem


def test_changing_a_watched_unsealed_entry_is_named():
    recent = _entries(2)
    _seal_job()
    _raw("UPDATE inventory_auditentry SET comment = 'edited' WHERE id = %s", [recent[1].pk])
    _seal()
    result = verify()
    assert not result.ok and result.first_bad == recent[1].pk
    assert "observed unsealed" in result.problem and result.problem.endswith("and later changed")


def test_row_inserted_into_a_gap_between_batches_is_named():
    _entries(3)
    _seal()
    # A rolled-back transaction leaves a hole in the sequence: reserve an id the same way.
    [gap] = _entries(1)
    _raw("DELETE FROM inventory_auditentry WHERE id = %s", [gap.pk])
    later = _entries(2)
    _seal()
    batch = AuditBatch.objects.get(stream="audit", seq=2)
    assert (batch.first_id, batch.last_id, batch.missing_ids) == (gap.pk, later[-1].pk, [[gap.pk, gap.pk]])
    assert verify().ok
    AuditEntry.objects.create(id=gap.pk, actor_label="mallory", action="tool.updated", object_type="x", object_id="1")
    result = verify()
    assert not result.ok and result.batch == 2 and result.first_bad == gap.pk
    assert result.problem == f"entry {gap.pk} was inserted into a sealed range"


def test_batches_chain_over_contiguous_ranges():
    _entries(2)
    _seal()
    _entries(3)
    _seal()
    first, second = AuditBatch.objects.filter(stream="audit").order_by("seq")
    assert first.first_id == 1 and second.first_id == first.last_id + 1
    _raw("UPDATE inventory_auditbatch SET first_id = first_id + 1 WHERE id = %s", [second.pk])
    result = verify()
    assert not result.ok and result.batch == 2 and "not contiguous" in result.problem


def test_key_rotation_keeps_old_batches_verifiable(settings):
    settings.AUDIT_SEAL_KEY = "first-key"
    _entries(2)
    _seal()
    settings.AUDIT_SEAL_KEY = "second-key"
    settings.AUDIT_SEAL_OLD_KEYS = ["first-key"]
    _entries(2)
    _seal()
    old, new = AuditBatch.objects.filter(stream="audit").order_by("seq")
    assert (old.key_id, new.key_id) == (sealing.key_id("first-key"), sealing.key_id("second-key"))
    assert len(old.key_id) == 16 and "first-key" not in old.key_id
    result = verify()
    assert result.ok and result.checked == 4


def test_unknown_key_id_is_named(settings):
    settings.AUDIT_SEAL_KEY = "retired-key"
    _entries(2)
    _seal()
    settings.AUDIT_SEAL_KEY = "new-key"  # rotated without listing the old key in AUDIT_SEAL_OLD_KEYS
    result = verify()
    assert not result.ok and result.batch == 1
    assert sealing.key_id("retired-key") in result.problem and "AUDIT_SEAL_OLD_KEYS" in result.problem


def test_batches_sealed_before_key_ids_verify_with_the_current_key():
    entries = _entries(3)
    leaves = [
        (entry.pk, sealing.leaf_hash(row, legacy=True)) for entry, row in zip(entries, _values(entries), strict=True)
    ]
    AuditBatch.objects.create(
        stream="audit", seq=1, first_id=entries[0].pk, last_id=entries[-1].pk, entry_count=3,
        leaf_ids=[pk for pk, _ in leaves], leaves=[leaf for _, leaf in leaves],
        digest=hashes.batch_digest(sealing.GENESIS, leaves), prev_digest=sealing.GENESIS,
    )  # fmt: skip
    _entries(2)
    _seal()
    assert AuditBatch.objects.get(stream="audit", seq=2).first_id == entries[-1].pk + 1
    assert verify().ok


def _values(entries: list[AuditEntry]) -> list[dict]:
    columns = [f.attname for f in AuditEntry._meta.concrete_fields]
    return list(AuditEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("pk").values(*columns))


def test_sealing_behind_is_reported():
    assert sealing.sealing_lag() is None
    entries = _entries(2)
    later = timezone.now() + sealing.lag_bound() + timedelta(seconds=5)
    with time_machine.travel(later):
        assert sealing.sealing_lag() > sealing.lag_bound().total_seconds()
        result = verify()
    assert not result.ok and result.first_bad == entries[0].pk
    assert result.problem.startswith(f"sealing is behind: entry {entries[0].pk}")
    assert verify().ok  # not yet late


def test_anchored_clean_chain_is_ok(settings):
    _entries(3)
    AccessEvent.objects.create(occurred_at=timezone.now(), source="gw", decision="deny", reason="x")
    _seal()
    _entries(2)
    _seal()
    _entries(1)
    _seal_job()  # leaves a watched, unsealed entry
    anchored = {(r["stream"], r["seq"]): r["digest"] for r in _anchor_records(settings, "batch")}
    assert anchored == {(b.stream, b.seq): b.digest for b in AuditBatch.objects.all()}
    assert len(anchored) == 3
    result = verify()
    assert result.ok and result.checked == 6 and result.problems == ()


def test_anchor_catches_up_after_a_crash_between_commit_and_anchor(settings):
    _entries(2)
    with time_machine.travel(timezone.now() + sealing.GRACE + timedelta(seconds=1)):
        sealing.seal_all()  # committed, but the process died before the after-commit anchor write
    assert _anchor_records(settings, "batch") == []
    with time_machine.travel(timezone.now() + 3 * sealing.seal_interval()):
        result = verify()
        assert not result.ok and result.problem.startswith("the anchor is behind: batch 1")
        _seal_job()
        assert verify().ok
    assert [r["seq"] for r in _anchor_records(settings, "batch")] == [1]


def test_file_anchor_survives_a_torn_line(tmp_path):
    anchor = FileAnchor(tmp_path / "anchor.jsonl")
    anchor.extend({"kind": "test", "n": n, "pad": "x" * 30_000} for n in range(5))
    with open(anchor.path, "ab") as handle:
        handle.write(b'{"kind": "test", "n": 99')  # a crash mid-write
    assert [r["n"] for r in anchor.records()] == [0, 1, 2, 3, 4]
    assert [r["n"] for r in anchor.newest_first()] == [4, 3, 2, 1, 0]
    anchor.append({"kind": "test", "n": 5})
    assert [r["n"] for r in anchor.records()] == [0, 1, 2, 3, 4, 5]
    assert [r["n"] for r in anchor.newest_first()] == [5, 4, 3, 2, 1, 0]


def test_every_test_has_its_own_anchor(settings, tmp_path):
    assert str(settings.AUDIT_ANCHOR_PATH).startswith(str(tmp_path))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_test_flush_passes_the_truncate_trigger_and_leaves_it_armed():
    _entries(1)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEntry.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"
    with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE inventory_auditentry")


def test_a_nullable_column_added_later_keeps_sealed_leaves(settings):
    """Schema changes must not turn an intact history into a tampered one: NULL columns are not in the leaf."""
    from inventory.audit.hashes import leaf_hash

    row = {"id": 1, "action": "tool.updated", "comment": ""}
    assert leaf_hash(row) == leaf_hash({**row, "added_later": None})
    assert leaf_hash(row) != leaf_hash({**row, "added_later": "x"})
    assert leaf_hash({**row, "before": {"a": 1}}) != leaf_hash({**row, "before": None})
