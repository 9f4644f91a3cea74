"""Verification of the sealed audit chain against the database and the anchor (inventory.audit.sealing says what is
sealed and how): names every entry or batch that was changed, deleted, inserted or reordered, a missing or re-sealed
tail, an entry deleted or changed after a seal run watched it, and sealing that is behind."""

import hmac
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from inventory.audit.anchor import Anchor, get_anchor
from inventory.audit.checkpoint import StreamState
from inventory.audit.hashes import batch_digest, id_gaps, key_id, leaf_hash, range_digest, seal_keys
from inventory.audit.partitions import valid_archives
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

# A full run reports progress every this many batches.
PROGRESS_EVERY = 50


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


def _read_anchor(anchor: Anchor, positions: dict[str, int] | None = None) -> tuple[dict[str, _Anchored], int]:
    """The anchor's batch digests and watches per stream, from each stream's position on; and where the read ended."""
    positions = positions or {}
    start = min((positions.get(stream, 0) for stream in STREAMS), default=0)
    anchored: dict[str, _Anchored] = defaultdict(_Anchored)
    end = start
    for record, position in anchor.records_after(start):
        before, end = end, position
        stream = record.get("stream")
        if stream not in STREAMS or before < positions.get(stream, 0):
            continue
        if record.get("kind") == "batch":
            # The same batch anchored twice (overlapping runs) is fine; two digests for one seq are not.
            anchored[stream].batches.setdefault(int(record["seq"]), set()).add(record["digest"])
        elif record.get("kind") == "watch" and record.get("ids"):
            anchored[stream].watches.append(record)
    return anchored, end


Progress = Callable[[int], None]


def verify(anchor: Anchor | None = None, *, progress: Progress | None = None) -> VerifyResult:
    """Full verification: every batch of every stream against its rows, the anchor and the watches."""
    result, _states = verify_from({stream: StreamState() for stream in STREAMS}, anchor, progress=progress)
    return result


def verify_from(
    starts: dict[str, StreamState], anchor: Anchor | None = None, *, progress: Progress | None = None
) -> tuple[VerifyResult, dict[str, StreamState | None]]:
    """Verify each stream from where `starts` says it stands (the chain's start for a full run, a checkpoint for an
    incremental one). Returns the verdict and, per stream, where it now stands (None where a problem was found, so
    that a checkpoint never moves past one)."""
    anchor = anchor or get_anchor()
    anchored, end = _read_anchor(anchor, {stream: state.anchor_position for stream, state in starts.items()})
    keys = seal_keys()
    # Batches whose rows went to an archive (inventory/audit/retention.py) and may since have been dropped with their
    # partition (inventory/audit/partitions.py): only archives whose MAC holds under a seal key count.
    archived = {stream: [(a.first_seq, a.last_seq) for a in valid_archives(stream)] for stream in STREAMS}
    now = timezone.now()
    problems: list[Problem] = []
    states: dict[str, StreamState | None] = {}
    for stream, model in STREAMS.items():
        state, clean = _verify_stream(
            stream, model, anchored[stream], keys, now, problems, starts[stream], progress, archived[stream]
        )
        state.anchor_position = end
        states[stream] = state if clean else None
    checked = sum(state.checked for state in states.values() if state is not None)
    if not problems:
        return VerifyResult(True, checked), states
    first = problems[0]
    result = VerifyResult(
        False, checked, first.first_bad, first.stream, first.batch, first.problem, tuple(problems[:MAX_PROBLEMS])
    )
    return result, states


def _verify_stream(
    stream, model, anchored: _Anchored, keys, now: datetime, problems: list[Problem], start: StreamState,
    progress: Progress | None = None, archived: list[tuple[int, int]] = (),
) -> tuple[StreamState, bool]:  # fmt: skip
    """Recheck one stream's batches after `start` in order against their rows, the anchor and the watches; returns
    where the stream then stands, and whether nothing sealed or watched was found wrong."""

    def report(seq: int | None, first_bad: int | None, text: str) -> None:
        problems.append(Problem(stream, seq, first_bad, text))

    checked = start.checked
    prev, prev_last, head_seq = start.digest, start.last_id, start.seq
    if start.seq:
        _check_start(stream, start, anchored, report)
    seen: set[int] = set()
    # Watches are fed by the batches in id order and settled once the batches pass their last id, so only the few
    # that span the current batch are held open. A checkpoint carries the ones that reached past its last batch.
    records = start.open_watches + anchored.watches
    waiting = sorted((Watched(record) for record in records), key=lambda w: w.ids[0], reverse=True)
    open_watches: list[Watched] = []
    behind_reported = False
    anchor_bound = now - 2 * seal_interval()
    batches = AuditBatch.objects.filter(stream=stream, seq__gt=start.seq).order_by("seq")
    for done, batch in enumerate(batches.iterator(chunk_size=200), start=1):
        seen.add(batch.seq)
        head_seq = batch.seq
        gone_ok = any(first <= batch.seq <= last for first, last in archived)
        bad, sealed = _verify_batch(batch, model, prev, prev_last, keys, archived=gone_ok)
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
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None and len(seen) % PROGRESS_EVERY:
        progress(len(seen) % PROGRESS_EVERY)

    for seq in sorted(seq for seq in anchored.batches if seq not in seen and seq > start.seq):
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

    # Everything above concerns what is sealed or watched; sealing that is behind does not, so it alone does not keep
    # a checkpoint from moving on (it is still reported, every run, until sealing catches up).
    clean = all(problem.stream != stream for problem in problems)
    oldest = _oldest_unsealed(stream)
    if oldest is not None and now - oldest[1] > lag_bound():
        pk, written = oldest
        waited = int((now - written).total_seconds())
        report(
            None, pk, f"sealing is behind: entry {pk}, written at {written.isoformat()}, is unsealed after {waited}s"
        )
    # Watches that reach past the last batch are settled by later batches: the next run starts with them.
    carried = [watched.record for watched in remaining if watched.ids and watched.ids[-1] > prev_last]
    return StreamState(head_seq, prev, prev_last, checked, 0, carried), clean


def _check_start(stream: str, start: StreamState, anchored: _Anchored, report) -> None:
    """An incremental run trusts what is before its checkpoint; it still checks, in one query, that the checkpoint's
    batch is unchanged and that the batches anchored since the checkpoint (late anchoring) match the database."""
    late = {seq: digests for seq, digests in anchored.batches.items() if seq <= start.seq}
    wanted = {start.seq, *late}
    found = dict(AuditBatch.objects.filter(stream=stream, seq__in=wanted).values_list("seq", "digest").order_by("seq"))
    if found.get(start.seq) != start.digest:
        report(start.seq, None, f"batch {start.seq} changed or went missing after it was verified")
    for seq, digests in sorted(late.items()):
        if seq not in found:
            report(seq, None, f"batch {seq} is in the anchor but was deleted from the database")
        elif found[seq] not in digests:
            report(seq, None, f"batch {seq}'s digest differs from the anchored one: history was re-sealed")


def _report_watch(watched: Watched, keys: dict[str, str], report) -> None:
    found = watched.problem(keys)
    if found is not None:
        report(None, *found)


def _verify_batch(
    batch: AuditBatch, model, prev: str, prev_last: int, keys: dict[str, str], *, archived: bool = False
) -> tuple[tuple[int | None, str] | None, dict[int, str] | None]:
    """The batch's problem, if any, and its leaves by id when the batch itself is intact enough to read them.
    `archived`: the batch is in a verified archive, so its rows may be gone (dropped with their partition); the batch
    itself is still checked, and a row that is still here must still be what was sealed."""
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
        if pk not in actual_ids and not archived:
            return (pk, f"entry {pk} was deleted"), sealed
    for pk, _ in actual:
        if pk not in sealed:
            return (pk, f"entry {pk} was inserted into a sealed range"), sealed
    current = dict(actual)
    for pk, leaf in recorded:
        if pk in current and current[pk] != leaf:
            moved = next((other for other, leaf_ in recorded if leaf_ == current[pk] and other != pk), None)
            if moved is not None:
                return (pk, f"entry {pk} holds what was sealed as entry {moved}: entries were reordered"), sealed
            return (pk, f"entry {pk} was changed"), sealed
    return None, sealed
