"""The access events' monthly partitions on PostgreSQL: creating months ahead, and dropping archived ones.

Migration 0028 (audit_partition_events) partitions the table by range of `recorded_at`, the time the portal recorded a
row (never the caller's occurred_at), with one partition per UTC month, a `_legacy` partition holding what an existing
deployment had before, and a DEFAULT partition for times no month covers. SQLite keeps one table: every function here
does nothing there.

Dropping is the last step of retention (inventory/audit/retention.py): a partition goes only when it is closed, every
row in it lies in the id ranges of archives whose MAC holds under the seal key, and each of those files is still in the
storage with the SHA-256 it was verified with, and verification (its checkpoint) has passed those batches. The job
then records an ArchivedPartition row, audits it, and detaches
and drops the partition in the same transaction; the database's guard (event triggers, migration 0028) refuses a
DETACH or DROP of an event partition with no such row, whoever asks. Verification (inventory/audit/verify.py) then
accepts the rows of archived batches as gone on purpose, and still names any other missing row.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from inventory.audit.anchor import get_anchor
from inventory.audit.record import GRACE, audit_record
from inventory.models import AccessEvent, ArchivedPartition, AuditArchive, AuditBatch

logger = logging.getLogger(__name__)

PARENT = AccessEvent._meta.db_table
MONTHS_AHEAD = 3


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None: MINVALUE (the legacy partition), or the DEFAULT partition
    end: datetime | None  # None: the DEFAULT partition

    @property
    def is_default(self) -> bool:
        return self.end is None


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partitions() -> list[Partition]:
    """The events table's partitions, oldest first (the DEFAULT one last)."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        # The bounds as the database reads them, in UTC; MINVALUE and DEFAULT come out NULL.
        cursor.execute(
            """
            SELECT c.relname,
                   CASE WHEN b.bound LIKE 'FOR VALUES FROM (MINVALUE)%%' OR b.bound = 'DEFAULT' THEN NULL
                        ELSE substring(b.bound FROM 'FROM \\(''([^'']+)''\\)')::timestamptz END,
                   CASE WHEN b.bound = 'DEFAULT' THEN NULL
                        ELSE substring(b.bound FROM 'TO \\(''([^'']+)''\\)')::timestamptz END
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
            WHERE i.inhparent = %s::regclass
            """,
            [PARENT],
        )
        found = [Partition(name, start, end) for name, start, end in cursor.fetchall()]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.end or far, p.start or datetime.min.replace(tzinfo=UTC)))


def ensure_months(first: date, last: date) -> list[str]:
    """Create the monthly partitions from `first` to `last` (inclusive) that do not exist yet; returns those created.

    A month whose rows already went to the DEFAULT partition cannot get its own (PostgreSQL refuses to create a
    partition the default holds rows for): it stays there, kept, and is logged."""
    if not is_partitioned():
        return []
    made = []
    month = first.replace(day=1)
    existing = {p.name for p in partitions()}
    while month <= last:
        name = f"{PARENT}_y{month:%Y}m{month:%m}"
        if name not in existing:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT nhi_event_partition(%s)", [month])
                made.append(name)
            except DatabaseError:
                logger.warning("Could not create the access events partition %s: the default partition holds rows "
                               "of that month", name)  # fmt: skip
        month = (month + timedelta(days=32)).replace(day=1)
    return made


def ensure_ahead(months: int = MONTHS_AHEAD) -> list[str]:
    """This month and the next `months` have their partitions (the retention job runs it daily)."""
    today = timezone.now().date()
    last = today.replace(day=1)
    for _ in range(months):
        last = (last + timedelta(days=32)).replace(day=1)
    return ensure_months(today, last)


# Dropping -----------------------------------------------------------------------------------------------------------


class NotDroppable(Exception):
    """The partition cannot be dropped (yet): open, not archived through, or an archive does not check out."""


def _row_span(name: str) -> tuple[int | None, int | None, int]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT MIN(id), MAX(id), COUNT(*) FROM "{name}"')
        return cursor.fetchone()


def valid_archives(stream: str) -> list[AuditArchive]:
    """The stream's archives whose MAC holds under a seal key we have: only those excuse rows for being gone."""
    from inventory.audit.hashes import seal_keys
    from inventory.audit.retention import archive_mac

    keys = seal_keys()
    good = []
    for archive in AuditArchive.objects.filter(stream=stream).order_by("first_id"):
        key = keys.get(archive.key_id)
        record = {name: getattr(archive, name) for name in ("stream", "first_seq", "last_seq", "first_id", "last_id",
                                                             "rows", "sha256", "name")}  # fmt: skip
        if key is not None and archive_mac(key, record) == archive.mac:
            good.append(archive)
    return good


def _covering(first_id: int, last_id: int) -> list[AuditArchive]:
    """The valid archives that together hold every id from first_id to last_id, or NotDroppable."""
    chosen, position = [], first_id
    for archive in valid_archives(AuditBatch.Stream.EVENTS):
        if archive.last_id < position or archive.first_id > last_id:
            continue
        if archive.first_id > position:
            break
        chosen.append(archive)
        position = archive.last_id + 1
        if position > last_id:
            return chosen
    raise NotDroppable(f"ids {position} to {last_id} are not in a verified archive yet")


def _verified_through(seq: int) -> None:
    """Verification has passed the archived batches: the checkpoint (HMAC under the seal key) moves only past batches
    found intact, rows included, so a row slipped into a sealed range by hand is named before it could leave unseen."""
    from inventory.audit import checkpoint

    state, problem = checkpoint.load(AuditBatch.Stream.EVENTS)
    if problem is not None or state.seq < seq:
        raise NotDroppable(f"verification has not passed batch {seq} yet")


def _still_stored(archive: AuditArchive) -> None:
    from inventory.audit.retention import archive_storage

    digest = hashlib.sha256()
    with archive_storage().open(archive.name, "rb") as stored:
        while chunk := stored.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != archive.sha256:
        raise NotDroppable(f"the archive {archive.name} in the storage is not the one verified")


def drop_partition(part: Partition, *, actor=None) -> ArchivedPartition:
    """Detach and drop one closed partition whose rows are all archived; audited, and recorded in the anchor."""
    if part.is_default or part.end > timezone.now() - GRACE:
        raise NotDroppable(f"{part.name} is not closed")
    with transaction.atomic():
        first_id, last_id, rows = _row_span(part.name)
        archives = _covering(first_id, last_id) if rows else []
        _verified_through(max((archive.last_seq for archive in archives), default=0))
        for archive in archives:
            _still_stored(archive)
        dropped = ArchivedPartition.objects.create(
            table_name=part.name,
            range_start=part.start or datetime(1, 1, 1, tzinfo=UTC),
            range_end=part.end,
            first_id=first_id,
            last_id=last_id,
            rows=rows,
            archives=[{"id": a.pk, "name": a.name, "sha256": a.sha256} for a in archives],
        )
        after = {"table": part.name, "first_id": first_id, "last_id": last_id, "rows": rows,
                 "archives": [a.pk for a in archives]}  # fmt: skip
        audit_record(
            actor=actor, action="audit.partition_dropped", obj=dropped, after=after,
            actor_label=None if actor else "retention job",
        )  # fmt: skip
        with connection.cursor() as cursor:
            # Deferred foreign-key checks of rows written earlier in this transaction must not be pending on the table.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # The guard (migration 0028) lets these through because of the row written above, in this transaction.
            cursor.execute(f'ALTER TABLE {PARENT} DETACH PARTITION "{part.name}"')
            cursor.execute(f'DROP TABLE "{part.name}"')
        record = {"kind": "partition_dropped", "stream": AuditBatch.Stream.EVENTS, **after,
                  "dropped_at": dropped.created_at}  # fmt: skip
        transaction.on_commit(lambda: get_anchor().append(record))
    return dropped


def drop_archived(*, before: date) -> list[ArchivedPartition]:
    """Drop every partition that ends on or before `before` and whose rows are all archived; the others wait."""
    limit = datetime(before.year, before.month, before.day, tzinfo=UTC)
    dropped = []
    for part in partitions():
        if part.is_default or part.end > limit:
            continue
        try:
            dropped.append(drop_partition(part))
        except NotDroppable as reason:
            logger.info("Access events partition %s kept: %s", part.name, reason)
    return dropped


def drop_enabled() -> bool:
    return getattr(settings, "AUDIT_ARCHIVE_DROP", True)
