"""Tamper evidence: sealed batches chain, and verification names what was changed, deleted, inserted or reordered."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import TestCase
from django.utils import timezone

from inventory.audit import sealing
from inventory.audit.verify import verify
from inventory.models import AccessEvent, AppendOnlyError, AuditBatch, AuditEntry
from tests import services as available

pytestmark = pytest.mark.django_db


def _entries(n: int) -> list[AuditEntry]:
    return [
        AuditEntry.objects.create(actor_label="test", action="tool.updated", object_type="inventory.aitool",
                                  object_id=str(i), object_repr=f"Tool {i}", after={"n": i})
        for i in range(n)
    ]  # fmt: skip


def _seal_job() -> int:
    """One run of the seal job, its after-commit anchoring included (the test's transaction never commits)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return sealing.seal_all()


def _seal() -> int:
    with time_machine.travel(timezone.now() + sealing.GRACE + timedelta(seconds=1)):
        return _seal_job()


def _raw(sql: str, params=()) -> None:
    """Tamper the way an attacker with database access would, past the application (and the trigger)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_seal_and_verify_clean_chain():
    _entries(5)
    assert _seal() == 5
    _entries(3)
    assert _seal() == 3
    batches = list(AuditBatch.objects.filter(stream="audit").order_by("seq"))
    assert [b.entry_count for b in batches] == [5, 3]
    assert batches[1].prev_digest == batches[0].digest and batches[0].prev_digest == sealing.GENESIS
    assert verify().as_dict() == {
        "ok": True, "checked": 8, "first_bad": None, "stream": None, "batch": None, "problem": "", "problems": [],
    }  # fmt: skip


def test_recent_entries_wait_for_the_grace_period():
    _entries(2)
    assert sealing.seal_all() == 0
    assert _seal() == 2


def test_changed_entry_is_named():
    entries = _entries(5)
    _seal()
    _raw("UPDATE inventory_auditentry SET comment = 'edited' WHERE id = %s", [entries[2].pk])
    result = verify()
    assert not result.ok and result.first_bad == entries[2].pk and "changed" in result.problem


def test_deleted_entry_is_named():
    entries = _entries(5)
    _seal()
    _raw("DELETE FROM inventory_auditentry WHERE id = %s", [entries[3].pk])
    result = verify()
    assert not result.ok and result.first_bad == entries[3].pk and "deleted" in result.problem


def _swap_contents(a: AuditEntry, b: AuditEntry) -> None:
    """Exchange everything but the ids of two rows: the entries now sit in each other's places."""
    columns = [f.column for f in AuditEntry._meta.concrete_fields if f.column != "id"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM inventory_auditentry WHERE id = %s", [a.pk])
        row_a = cursor.fetchone()
        cursor.execute(f"SELECT {', '.join(columns)} FROM inventory_auditentry WHERE id = %s", [b.pk])
        row_b = cursor.fetchone()
    assignments = ", ".join(f"{c} = %s" for c in columns)
    _raw(f"UPDATE inventory_auditentry SET {assignments} WHERE id = %s", [*row_b, a.pk])
    _raw(f"UPDATE inventory_auditentry SET {assignments} WHERE id = %s", [*row_a, b.pk])


def test_reordered_entries_are_named():
    entries = _entries(5)
    _seal()
    _swap_contents(entries[1], entries[3])
    result = verify()
    assert not result.ok and result.first_bad == entries[1].pk and "reordered" in result.problem


def test_tampered_batch_is_named():
    _entries(3)
    _seal()
    _entries(2)
    _seal()
    _raw("UPDATE inventory_auditbatch SET digest = %s WHERE stream = 'audit' AND seq = 1", ["f" * 64])
    result = verify()
    assert not result.ok and result.batch == 1 and result.first_bad is None


def test_events_are_sealed_too(security):
    AccessEvent.objects.create(
        occurred_at=timezone.now(), source="gw", tool_ref="t", identity_ref="i", decision="deny", reason="unknown_tool"
    )
    _seal()
    assert AuditBatch.objects.filter(stream="events").count() == 1
    _raw("UPDATE inventory_accessevent SET decision = 'allow'")
    assert verify().stream == "events"


def test_verify_command_and_api(api_as):
    _entries(2)
    _seal()
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "OK: 2 sealed entries verified" in out.getvalue()
    assert api_as("security").get("/api/v1/audit/verify/").json()["ok"] is True
    for role, status in [("anonymous", 401), ("owner", 403), ("manager", 403), ("gateway", 403)]:
        assert api_as(role).get("/api/v1/audit/verify/").status_code == status
    _raw("DELETE FROM inventory_auditentry")
    with pytest.raises(CommandError, match="was deleted"):
        call_command("verify_audit", stdout=StringIO())
    assert api_as("security").get("/api/v1/audit/verify/").json()["ok"] is False


def test_application_refuses_changes_to_events():
    event = AccessEvent.objects.create(occurred_at=timezone.now(), source="gw", decision="deny", reason="x")
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        AccessEvent.objects.update(reason="y")
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_resealing_without_the_key_is_detected(settings):
    entries = _entries(3)
    _seal()
    _raw("UPDATE inventory_auditentry SET comment = 'edited' WHERE id = %s", [entries[0].pk])
    # An attacker with database access deletes the batch and lets the job seal the edited rows again, but the
    # job's key is not theirs: with any other key the chain no longer verifies.
    real_key = settings.AUDIT_SEAL_KEY
    _raw("DELETE FROM inventory_auditbatch")
    settings.AUDIT_SEAL_KEY = "attacker-guess"
    _seal()
    settings.AUDIT_SEAL_KEY = real_key
    result = verify()
    assert not result.ok and result.batch == 1


def test_batch_with_mismatched_leaves_is_reported_not_crashing():
    _entries(2)
    _seal()
    _raw("UPDATE inventory_auditbatch SET leaf_ids = %s", ["[1]"])
    result = verify()
    assert not result.ok and "altered" in result.problem


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["inventory_auditentry", "inventory_accessevent", "inventory_auditbatch"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}"])
def test_postgres_trigger_refuses_update_and_delete(table, statement):
    if not available.using_postgres():
        pytest.skip("PostgreSQL only")
    _entries(1)
    AccessEvent.objects.create(occurred_at=timezone.now(), source="gw", decision="deny", reason="x")
    _seal()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(table=table))


# Issue #11, item 1: truncation, the tail, gaps between batches, unsealed entries, key rotation, lag.
