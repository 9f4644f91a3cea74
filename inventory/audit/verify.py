"""Verification of the sealed audit chain against the database and the anchor (inventory.audit.sealing says what is
sealed and how): names every entry or batch that was changed, deleted, inserted or reordered, a missing or re-sealed
tail, an entry deleted or changed after a seal run watched it, and sealing that is behind."""

import hmac
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from inventory.audit.anchor import Anchor, get_anchor
from inventory.audit.hashes import GENESIS, batch_digest, id_gaps, key_id, leaf_hash, range_digest, seal_keys
from inventory.audit.sealing import (
    MAX_PROBLEMS,
    STREAMS,
    _oldest_unsealed,
    _rows,
    lag_bound,
    seal_interval,
)
from inventory.audit.watch import Watched, live_leaves
from inventory.models import AuditBatch


@dataclass(frozen=True)
class Problem:
    stream: str
    batch: int | None
    first_bad: int | None
    problem: str

    def as_dict(self) -> dict:
        return {"stream": self.stream, "batch": self.batch, "first_bad": self.first_bad, "problem": self.problem}


@dataclass(frozen=True)
class VerifyResult:
    """`ok`, `checked` (entries in batches verified intact) and `first_bad` are the API contract; the first problem is
    also spelt out in `stream`, `batch` and `problem`, and `problems` lists up to MAX_PROBLEMS of them."""

    ok: bool
    checked: int
    first_bad: int | None = None
    stream: str | None = None
    batch: int | None = None
    problem: str = ""
    problems: tuple[Problem, ...] = field(default=())

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad": self.first_bad,
            "stream": self.stream,
            "batch": self.batch,
            "problem": self.problem,
            "problems": [problem.as_dict() for problem in self.problems],
        }


@dataclass
class _Anchored:
    batches: dict[int, set[str]] = field(default_factory=dict)
    watches: list[dict] = field(default_factory=list)


def _read_anchor(anchor: Anchor) -> dict[str, _Anchored]:
    anchored: dict[str, _Anchored] = defaultdict(_Anchored)
    for record in anchor.records():
        stream = record.get("stream")
        if stream not in STREAMS:
            continue
        if record.get("kind") == "batch":
            # The same batch anchored twice (overlapping runs) is fine; two digests for one seq are not.
            anchored[stream].batches.setdefault(int(record["seq"]), set()).add(record["digest"])
        elif record.get("kind") == "watch" and record.get("ids"):
            anchored[stream].watches.append(record)
    return anchored


def verify(anchor: Anchor | None = None) -> VerifyResult:
    anchor = anchor or get_anchor()
    anchored = _read_anchor(anchor)
    keys = seal_keys()
    now = timezone.now()
    problems: list[Problem] = []
    checked = 0
    for stream, model in STREAMS.items():
        checked += _verify_stream(stream, model, anchored[stream], keys, now, problems)
    if not problems:
        return VerifyResult(True, checked)
    first = problems[0]
    return VerifyResult(
        False, checked, first.first_bad, first.stream, first.batch, first.problem, tuple(problems[:MAX_PROBLEMS])
    )


def _verify_stream(stream, model, anchored: _Anchored, keys, now: datetime, problems: list[Problem]) -> int:
    """Recheck one stream's batches in order against their rows, the anchor and the watches; returns entries intact."""

    def report(seq: int | None, first_bad: int | None, text: str) -> None:
        problems.append(Problem(stream, seq, first_bad, text))

    checked = 0
    prev, prev_last, head_seq = GENESIS, 0, 0
    seen: set[int] = set()
    # Watches are fed by the batches in id order and settled once the batches pass their last id, so only the few
    # that span the current batch are held open.
    waiting = sorted((Watched(record) for record in anchored.watches), key=lambda w: w.ids[0], reverse=True)
    open_watches: list[Watched] = []
    behind_reported = False
    anchor_bound = now - 2 * seal_interval()
    for batch in AuditBatch.objects.filter(stream=stream).order_by("seq").iterator(chunk_size=200):
        seen.add(batch.seq)
        head_seq = batch.seq
        bad, sealed = _verify_batch(batch, model, prev, prev_last, keys)
        digests = anchored.batches.get(batch.seq)
        if bad is not None:
            report(batch.seq, *bad)
        elif digests is not None and batch.digest not in digests:
            # Consistent in itself, so sealed with a key we hold, yet not what was sealed at the time.
            report(batch.seq, None, f"batch {batch.seq}'s digest differs from the anchored one: history was re-sealed")
        else:
            checked += batch.entry_count
            if digests is None and batch.sealed_at < anchor_bound and not behind_reported:
                behind_reported = True
                sealed_at = batch.sealed_at.isoformat()
                report(
                    batch.seq, None, f"the anchor is behind: batch {batch.seq}, sealed at {sealed_at}, is not anchored"
                )
        while waiting and waiting[-1].ids[0] <= batch.last_id:
            open_watches.append(waiting.pop())
        if sealed is not None:
            for watched in open_watches:
                watched.feed(batch.first_id, batch.last_id, sealed)
        still_open = []
        for watched in open_watches:
            if watched.ids[-1] <= batch.last_id and not watched.unresolved():
                _report_watch(watched, keys, report)
            else:
                still_open.append(watched)
        open_watches = still_open
        prev, prev_last = batch.digest, batch.last_id

    for seq in sorted(seq for seq in anchored.batches if seq not in seen):
        if seq > head_seq:
            report(seq, None, f"batch {seq} is in the anchor but missing from the database")
            break  # the rest of the tail went with it
        report(seq, None, f"batch {seq} is in the anchor but was deleted from the database")

    # What the batches did not settle: watched ids past the last batch, or in the gaps between old-format batches.
    remaining = open_watches + waiting[::-1]
    unresolved = sorted({pk for watched in remaining for pk in watched.unresolved()})
    live = live_leaves(model, unresolved) if unresolved else {}
    for watched in remaining:
        watched.feed_live(live)
        _report_watch(watched, keys, report)

    oldest = _oldest_unsealed(stream)
    if oldest is not None and now - oldest[1] > lag_bound():
        pk, written = oldest
        waited = int((now - written).total_seconds())
        report(
            None, pk, f"sealing is behind: entry {pk}, written at {written.isoformat()}, is unsealed after {waited}s"
        )
    return checked


def _report_watch(watched: Watched, keys: dict[str, str], report) -> None:
    found = watched.problem(keys)
    if found is not None:
        report(None, *found)


def _verify_batch(
    batch: AuditBatch, model, prev: str, prev_last: int, keys: dict[str, str]
) -> tuple[tuple[int | None, str] | None, dict[int, str] | None]:
    """The batch's problem, if any, and its leaves by id when the batch itself is intact enough to read them."""
    # Batches from before key ids were recorded were sealed with the key that is current now, or not at all.
    key = keys.get(batch.key_id or key_id(settings.AUDIT_SEAL_KEY))
    if key is None:
        return (
            None,
            f"batch {batch.seq} was sealed with key id {batch.key_id}, which is neither AUDIT_SEAL_KEY nor in "
            "AUDIT_SEAL_OLD_KEYS",
        ), None
    if batch.prev_digest != prev:
        return (None, f"batch {batch.seq} does not chain to the batch before it"), None
    if len(batch.leaf_ids) != len(batch.leaves) or len(batch.leaf_ids) != batch.entry_count:
        return (None, f"batch {batch.seq} itself was altered"), None
    recorded = list(zip(batch.leaf_ids, batch.leaves, strict=True))
    if batch.key_id:
        if batch.first_id != prev_last + 1:
            return (
                None,
                f"batch {batch.seq} starts at id {batch.first_id}, not right after the batch before it "
                f"({prev_last + 1}): the sealed ranges are not contiguous",
            ), None
        ids = [pk for pk, _ in recorded]
        in_order = all(a < b for a, b in itertools.pairwise(ids))
        if not in_order or (ids and (ids[0] < batch.first_id or ids[-1] != batch.last_id)):
            return (None, f"batch {batch.seq} itself was altered"), None
        if id_gaps(batch.first_id, batch.last_id, ids) != batch.missing_ids:
            return (None, f"batch {batch.seq} itself was altered"), None
        digest = range_digest(key, prev, batch.first_id, batch.last_id, batch.missing_ids, recorded)
        range_ok = True
    else:
        digest = batch_digest(prev, recorded, key)
        range_ok = batch.first_id > prev_last
    if not hmac.compare_digest(digest.encode(), str(batch.digest).encode()) or not range_ok:
        return (None, f"batch {batch.seq} itself was altered"), None
    sealed = dict(recorded)
    legacy = not batch.key_id
    actual = [(row["id"], leaf_hash(row, legacy=legacy)) for row in _rows(model, batch.first_id - 1, batch.last_id)]
    actual_ids = {pk for pk, _ in actual}
    for pk, _leaf in recorded:
        if pk not in actual_ids:
            return (pk, f"entry {pk} was deleted"), sealed
    for pk, _ in actual:
        if pk not in sealed:
            return (pk, f"entry {pk} was inserted into a sealed range"), sealed
    current = dict(actual)
    for pk, leaf in recorded:
        if current[pk] != leaf:
            moved = next((other for other, leaf_ in recorded if leaf_ == current[pk] and other != pk), None)
            if moved is not None:
                return (pk, f"entry {pk} holds what was sealed as entry {moved}: entries were reordered"), sealed
            return (pk, f"entry {pk} was changed"), sealed
    return None, sealed
