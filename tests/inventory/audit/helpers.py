"""Writing, sealing and tampering with audit rows in tests (issue 17)."""

from datetime import timedelta

import time_machine
from django.db import connection
from django.test import TestCase
from django.utils import timezone

from inventory.audit import sealing
from inventory.models import AccessEvent, AuditEntry


def entries(n: int, start: int = 0) -> list[AuditEntry]:
    return [
        AuditEntry.objects.create(actor_label="test", action="tool.updated", object_type="inventory.aitool",
                                  object_id=str(i), object_repr=f"Tool {i}", after={"n": i})
        for i in range(start, start + n)
    ]  # fmt: skip


def events(n: int, **fields) -> list[AccessEvent]:
    values = {"source": "gw", "decision": "allow", "reason": "allowed", "tool_ref": "docs", **fields}
    return [AccessEvent.objects.create(occurred_at=timezone.now(), **values) for _ in range(n)]


def seal() -> int:
    """One seal run past the grace period, its after-commit anchoring included."""
    later = timezone.now() + sealing.GRACE + timedelta(seconds=1)
    with time_machine.travel(later), TestCase.captureOnCommitCallbacks(execute=True):
        return sealing.seal_all()


def raw(sql: str, params=()) -> None:
    """Tamper the way an attacker with database access would, past the application (and the trigger)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
