"""Tamper evidence for the audit trail and the access events.

Every minute a job seals the entries written since the last batch: it hashes each entry (canonical JSON of its
columns), stores the leaf hashes, and stores an HMAC-SHA256 (key AUDIT_SEAL_KEY, kept outside the database) over the
previous batch's digest and the leaves, so the batches form a chain, as cloud audit trails do with digest files.
`verify` recomputes everything and names the first entry or batch that was changed, deleted, inserted or reordered.

Entries are sealed only once they are half a minute old, so a transaction that took an id early but committed late
is not skipped. A row that turns up inside an already sealed range later is reported as an insertion.
"""

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .models import AccessEvent, AuditBatch, AuditEntry

GENESIS = "0" * 64
GRACE = timedelta(seconds=30)
MAX_BATCH = 5000
STREAMS = {AuditBatch.Stream.AUDIT: AuditEntry, AuditBatch.Stream.EVENTS: AccessEvent}


def _columns(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def leaf_hash(row: dict) -> str:
    """SHA-256 of an entry's content. The id is bound in by the batch digest, so moved content is recognisable."""
    content = {k: v for k, v in row.items() if k != "id"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def batch_digest(prev_digest: str, leaves: list[tuple[int, str]]) -> str:
    """HMAC-SHA256, keyed from the environment: someone who can write to the database but does not hold the key
    cannot re-seal entries they changed."""
    h = hmac.new(settings.AUDIT_SEAL_KEY.encode(), prev_digest.encode(), hashlib.sha256)
    for pk, leaf in leaves:
        h.update(f"{pk}:{leaf}".encode())
    return h.hexdigest()


def _rows(model, lo: int, hi: int | None = None, limit: int | None = None) -> Iterator[dict]:
    queryset = model.objects.filter(pk__gt=lo)
    if hi is not None:
        queryset = queryset.filter(pk__lte=hi)
    queryset = queryset.order_by("pk").values(*_columns(model))
    if limit is not None:
        queryset = queryset[:limit]
    return queryset.iterator(chunk_size=2000)


def seal(stream: str) -> AuditBatch | None:
    """Seal the next run of entries of one stream. Batches are serialised by locking the stream's last batch."""
    model = STREAMS[stream]
    with transaction.atomic():
        last = AuditBatch.objects.select_for_update().filter(stream=stream).order_by("-seq").first()
        lo = last.last_id if last else 0
        cutoff = timezone.now() - GRACE
        time_field = "created_at" if model is AuditEntry else "recorded_at"
        rows = []
        for row in _rows(model, lo, limit=MAX_BATCH):
            # Stop at the first row still inside the grace period, keeping the sealed range contiguous.
            if row[time_field] > cutoff:
                break
            rows.append(row)
        if not rows:
            return None
        leaves = [(row["id"], leaf_hash(row)) for row in rows]
        prev = last.digest if last else GENESIS
        return AuditBatch.objects.create(
            stream=stream,
            seq=(last.seq + 1) if last else 1,
            first_id=rows[0]["id"],
            last_id=rows[-1]["id"],
            entry_count=len(rows),
            leaves=[leaf for _, leaf in leaves],
            leaf_ids=[pk for pk, _ in leaves],
            digest=batch_digest(prev, leaves),
            prev_digest=prev,
        )


def seal_all() -> int:
    sealed = 0
    for stream in STREAMS:
        while (batch := seal(stream)) is not None:
            sealed += batch.entry_count
            if batch.entry_count < MAX_BATCH:
                break
    return sealed


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad: int | None = None
    stream: str | None = None
    batch: int | None = None
    problem: str = ""

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad": self.first_bad,
            "stream": self.stream,
            "batch": self.batch,
            "problem": self.problem,
        }


def verify() -> VerifyResult:
    checked = 0
    for stream, model in STREAMS.items():
        prev = GENESIS
        prev_last = 0
        for batch in AuditBatch.objects.filter(stream=stream).order_by("seq").iterator():
            bad = _verify_batch(batch, model, prev, prev_last)
            if bad is not None:
                first_bad, problem = bad
                return VerifyResult(False, checked, first_bad, stream, batch.seq, problem)
            checked += batch.entry_count
            prev, prev_last = batch.digest, batch.last_id
    return VerifyResult(True, checked)


def _verify_batch(batch: AuditBatch, model, prev: str, prev_last: int) -> tuple[int | None, str] | None:
    if batch.prev_digest != prev:
        return None, f"batch {batch.seq} does not chain to the batch before it"
    if len(batch.leaf_ids) != len(batch.leaves) or len(batch.leaf_ids) != batch.entry_count:
        return None, f"batch {batch.seq} itself was altered"
    recorded = list(zip(batch.leaf_ids, batch.leaves, strict=True))
    if batch_digest(prev, recorded) != batch.digest or batch.first_id <= prev_last:
        return None, f"batch {batch.seq} itself was altered"
    actual = [(row["id"], leaf_hash(row)) for row in _rows(model, batch.first_id - 1, batch.last_id)]
    actual_ids = {pk for pk, _ in actual}
    recorded_ids = {pk for pk, _ in recorded}
    for pk, _leaf in recorded:
        if pk not in actual_ids:
            return pk, f"entry {pk} was deleted"
    for pk, _ in actual:
        if pk not in recorded_ids:
            return pk, f"entry {pk} was inserted into a sealed range"
    current = dict(actual)
    for pk, leaf in recorded:
        if current[pk] != leaf:
            moved = next((other for other, sealed in recorded if sealed == current[pk] and other != pk), None)
            if moved is not None:
                return pk, f"entry {pk} holds what was sealed as entry {moved}: entries were reordered"
            return pk, f"entry {pk} was changed"
    return None
