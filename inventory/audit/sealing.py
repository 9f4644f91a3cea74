"""Tamper evidence for the audit trail and the access events.

Every minute a job seals the entries written since the last batch: it hashes each entry (canonical JSON of its
columns), stores the leaf hashes, and stores an HMAC-SHA256 (key AUDIT_SEAL_KEY, kept outside the database) over the
previous batch's digest, the batch's id range and the leaves, so the batches form a chain, as cloud audit trails do
with digest files. `verify` (inventory/audit/verify.py) recomputes everything and names what was changed, deleted,
inserted or reordered.

- Ranges are contiguous: a batch covers every id from the one after the previous batch's last id to its own last id,
  and records the ids absent from that range (sequences leave gaps). A row that turns up anywhere in a sealed range
  later, gaps between entries included, is an insertion.
- Each batch records the id of the key that sealed it (a hash of the key, never the key), so AUDIT_SEAL_KEY can be
  rotated with the old key moved to AUDIT_SEAL_OLD_KEYS. Batches sealed before key ids existed have none and are
  verified with the current key, in the format of the time, which did not bind the range: the gaps between those
  batches cannot be checked.
- After the batches commit, their digests are appended to the anchor (inventory/audit/anchor.py), a write-once store
  outside the database; each run first anchors whatever an earlier run sealed but did not get to anchor. The chain
  alone proves nothing against someone who deletes its tail, or truncates the batches and lets this job re-seal
  edited history with the real key; the anchor still has the digests they replaced.
- Entries inside the grace period cannot be sealed yet. Each run appends a "watch" per stream to the anchor (see
  inventory/audit/watch.py): the ids beyond the last anchored batch and an HMAC over (id, leaf hash) in order, so an
  entry deleted or changed after a run saw it is named even though it was never sealed. A watch is written even when
  there is nothing to watch: it marks how far the anchor goes, so a run reads only the anchor's end.
  What remains open: an entry deleted or changed before any run saw it, that is within about one seal interval (a
  minute) of being written, or longer while runs are late; verify reports late runs ("sealing is behind").
- PostgreSQL refuses UPDATE, DELETE and TRUNCATE on entries, events and batches (migrations 0005, 0010, 0014); what
  is left to detect is someone who bypasses that, such as a superuser disabling triggers.

Entries are sealed only once they are half a minute old, so a transaction that took an id early but committed late
is not reported as an insertion. Entries older than the grace period plus two seal intervals that are still
unsealed, and batches that old that are not anchored, are reported too: quiet sealing is not a healthy chain.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.audit.anchor import Anchor, get_anchor
from inventory.audit.hashes import (
    GENESIS,
    id_gaps,
    key_id,
    leaf_hash,
    range_digest,
    row_columns,
    seal_keys,
)
from inventory.audit.record import GRACE
from inventory.audit.watch import check_watch, watch_record
from inventory.models import AccessEvent, AuditBatch, AuditEntry

logger = logging.getLogger(__name__)

MAX_BATCH = 5000
# A watch past this many rows (a burst inside one grace period) covers the oldest ones; the rest wait for the next run.
WATCH_MAX = 20_000
MAX_PROBLEMS = 100
STREAMS = {AuditBatch.Stream.AUDIT: AuditEntry, AuditBatch.Stream.EVENTS: AccessEvent}
TIME_FIELDS = {AuditBatch.Stream.AUDIT: "created_at", AuditBatch.Stream.EVENTS: "recorded_at"}


# Sealing ------------------------------------------------------------------------------------------------------------


def _rows(model, lo: int, hi: int | None = None, limit: int | None = None) -> Iterator[dict]:
    queryset = model.objects.filter(pk__gt=lo)
    if hi is not None:
        queryset = queryset.filter(pk__lte=hi)
    queryset = queryset.order_by("pk").values(*row_columns(model))
    if limit is not None:
        queryset = queryset[:limit]
    return queryset.iterator(chunk_size=2000)


def seal(stream: str) -> AuditBatch | None:
    """Seal the next run of entries of one stream. Batches are serialised by locking the stream's last batch."""
    model = STREAMS[stream]
    key = settings.AUDIT_SEAL_KEY
    with transaction.atomic():
        last = AuditBatch.objects.select_for_update().filter(stream=stream).order_by("-seq").first()
        lo = last.last_id if last else 0
        cutoff = timezone.now() - GRACE
        time_field = TIME_FIELDS[stream]
        rows = []
        for row in _rows(model, lo, limit=MAX_BATCH):
            # Stop at the first row still inside the grace period, keeping the sealed range contiguous.
            if row[time_field] > cutoff:
                break
            rows.append(row)
        if not rows:
            return None
        leaves = [(row["id"], leaf_hash(row)) for row in rows]
        first_id, last_id = lo + 1, rows[-1]["id"]
        missing = id_gaps(first_id, last_id, [pk for pk, _ in leaves])
        prev = last.digest if last else GENESIS
        return AuditBatch.objects.create(
            stream=stream,
            seq=(last.seq + 1) if last else 1,
            first_id=first_id,
            last_id=last_id,
            entry_count=len(rows),
            leaves=[leaf for _, leaf in leaves],
            leaf_ids=[pk for pk, _ in leaves],
            missing_ids=missing,
            key_id=key_id(key),
            digest=range_digest(key, prev, first_id, last_id, missing, leaves),
            prev_digest=prev,
        )


def seal_all() -> int:
    """The seal job: anchor what is pending, seal every stream, then anchor the new batches and watch the rest."""
    anchor = get_anchor()
    # A crash between an earlier run's commit and its anchor write left batches unanchored: they go first. An anchor
    # that cannot be written must not stop sealing as well; the write after sealing raises, and verify reports it.
    try:
        anchor_pending(anchor, watch=False)
    except OSError:
        logger.exception("Could not bring the audit anchor up to date before sealing")
    sealed = 0
    for stream in STREAMS:
        while (batch := seal(stream)) is not None:
            sealed += batch.entry_count
            if batch.entry_count < MAX_BATCH:
                break
    # Only committed batches may reach the write-once anchor: a rolled-back one would read as deleted forever.
    transaction.on_commit(lambda: anchor_pending(anchor, watch=True))
    return sealed


@dataclass
class _AnchorHead:
    seq: int = 0
    watch: dict | None = None


def _anchor_heads(anchor: Anchor) -> dict[str, _AnchorHead]:
    """Per stream, the highest anchored batch and the newest watch, read from the end of the anchor.

    Each run writes a watch per stream after its batch records, naming the highest batch anchored by then, so the
    read stops at the newest watch of every stream instead of reading the whole anchor."""
    heads = {stream: _AnchorHead() for stream in STREAMS}
    for record in anchor.newest_first():
        head = heads.get(record.get("stream"))
        if head is None or head.watch is not None:
            continue
        if record.get("kind") == "batch":
            head.seq = max(head.seq, int(record["seq"]))
        elif record.get("kind") == "watch":
            head.seq = max(head.seq, int(record["seq"]))
            head.watch = record
            if all(h.watch is not None for h in heads.values()):
                break
    return heads


def anchor_pending(anchor: Anchor | None = None, *, watch: bool = True) -> int:
    """Append the batches the anchor does not have yet and, with `watch`, a watch per stream. Returns batches added."""
    anchor = anchor or get_anchor()
    heads = _anchor_heads(anchor)
    keys = seal_keys()
    now = timezone.now()
    records: list[dict] = []
    added = 0
    for stream, model in STREAMS.items():
        head = heads[stream]
        pending = AuditBatch.objects.filter(stream=stream, seq__gt=head.seq).order_by("seq")
        fields = ("seq", "first_id", "last_id", "entry_count", "digest", "key_id", "sealed_at")
        for batch in pending.values(*fields).iterator(chunk_size=2000):
            records.append({"kind": "batch", "stream": stream, **batch, "anchored_at": now})
            head.seq = batch["seq"]
            added += 1
        if not watch:
            continue
        if head.watch is not None:
            problem = check_watch(stream, model, head.watch, keys)
            if problem is not None:
                logger.error("Audit chain, %s stream: %s", stream, problem[1])
        after_id = (
            AuditBatch.objects.filter(stream=stream, seq__lte=head.seq)
            .order_by("-seq")
            .values_list("last_id", flat=True)
            .first()
        ) or 0
        leaves = [(row["id"], leaf_hash(row)) for row in _rows(model, after_id, limit=WATCH_MAX)]
        records.append(
            watch_record(stream, leaves, at=now, seq=head.seq, after_id=after_id, key=settings.AUDIT_SEAL_KEY)
        )
    anchor.extend(records)
    return added


# Lag ----------------------------------------------------------------------------------------------------------------


def seal_interval() -> timedelta:
    """How often beat runs the seal job, from its schedule; a minute if that is not a plain interval (a crontab)."""
    schedule = settings.CELERY_BEAT_SCHEDULE.get("seal-audit-trail", {}).get("schedule")
    if isinstance(schedule, timedelta):
        return schedule
    return timedelta(seconds=schedule if isinstance(schedule, int | float) else 60)


def lag_bound() -> timedelta:
    """How old an unsealed entry may be: the grace period, a run that just missed it, and one late run."""
    return GRACE + 2 * seal_interval()


def _oldest_unsealed(stream: str) -> tuple[int, datetime] | None:
    model, time_field = STREAMS[stream], TIME_FIELDS[stream]
    last_id = AuditBatch.objects.filter(stream=stream).order_by("-seq").values_list("last_id", flat=True).first() or 0
    # By id, not by time: the first unsealed id is what holds sealing up, and the id index answers it at once.
    return model.objects.filter(pk__gt=last_id).order_by("pk").values_list("pk", time_field).first()


def sealing_lag() -> float | None:
    """Seconds the oldest unsealed entry of any stream has waited, or None when nothing waits; for health checks."""
    now = timezone.now()
    waits = [(now - oldest[1]).total_seconds() for stream in STREAMS if (oldest := _oldest_unsealed(stream))]
    return max(waits) if waits else None
