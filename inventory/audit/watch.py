"""Watches: what the seal job saw of entries it could not seal yet, so that deleting or changing them is named.

Entries inside the grace period cannot be sealed, and a row deleted there used to leave no trace. Each seal run appends
one watch per stream to the anchor: the ids beyond the last anchored batch as runs, a short keyed tag per entry (to
name which one changed) and an HMAC over (id, leaf hash) in id order (to prove that one did). A watched id must later
be sealed with the same leaf, or still be there unchanged; one that turns up among a batch's missing ids was deleted
before it was sealed. The window this cannot close is described in inventory/sealing.py.
"""

import bisect
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime

from inventory.audit.hashes import expand_ranges, id_ranges, key_id, leaf_hash, row_columns
from inventory.models import AuditBatch

# Tags only name which watched entry changed (32 bits each, to keep watches small); the full HMAC is the proof.
TAG_LENGTH = 8


def watch_tag(key: str, pk: int, leaf: str) -> str:
    return hmac.new(key.encode(), f"watch-entry:{pk}:{leaf}".encode(), hashlib.sha256).hexdigest()[:TAG_LENGTH]


def watch_mac(key: str, stream: str, leaves: Iterable[tuple[int, str]]) -> str:
    h = hmac.new(key.encode(), f"watch:{stream};".encode(), hashlib.sha256)
    for pk, leaf in leaves:
        h.update(f"{pk}:{leaf}".encode())
    return h.hexdigest()


def watch_record(
    stream: str, leaves: list[tuple[int, str]], *, at: datetime, seq: int, after_id: int, key: str
) -> dict:
    """The anchor record. `seq` is the highest batch anchored by then, so the next run can start reading here."""
    return {
        "kind": "watch",
        "stream": stream,
        "at": at,
        "seq": seq,
        "after_id": after_id,
        "ids": id_ranges(pk for pk, _ in leaves),
        "tags": "".join(watch_tag(key, pk, leaf) for pk, leaf in leaves),
        "mac": watch_mac(key, stream, leaves),
        "key_id": key_id(key),
    }


class Watched:
    """A watch being checked: the current leaf of each id it saw, from the batch that sealed it or the live row."""

    def __init__(self, record: dict) -> None:
        self.record = record
        self.ids = list(expand_ranges(record.get("ids") or []))
        self.current: dict[int, str | None] = {}

    def feed(self, first_id: int, last_id: int, leaves: dict[int, str]) -> None:
        """What a batch sealed over first_id..last_id; an id it covers but did not seal was gone by then."""
        lo, hi = bisect.bisect_left(self.ids, first_id), bisect.bisect_right(self.ids, last_id)
        for pk in self.ids[lo:hi]:
            self.current[pk] = leaves.get(pk)

    def feed_live(self, leaves: dict[int, str]) -> None:
        """The rows as they are now, for the ids no batch covers."""
        for pk in self.unresolved():
            self.current[pk] = leaves.get(pk)

    def unresolved(self) -> list[int]:
        return [pk for pk in self.ids if pk not in self.current]

    def problem(self, keys: dict[str, str]) -> tuple[int | None, str] | None:
        at = self.record.get("at")
        key = keys.get(self.record.get("key_id", ""))
        if key is None:
            return None, f"the watch of {at} was made with key id {self.record.get('key_id')}, which is not configured"
        tags = self.record.get("tags", "")
        for index, pk in enumerate(self.ids):
            leaf = self.current.get(pk)
            if leaf is None:
                return pk, f"entry {pk} was observed unsealed at {at} and later deleted"
            if watch_tag(key, pk, leaf) != tags[index * TAG_LENGTH : (index + 1) * TAG_LENGTH]:
                return pk, f"entry {pk} was observed unsealed at {at} and later changed"
        leaves = [(pk, self.current[pk]) for pk in self.ids]
        recorded_mac = str(self.record.get("mac", "")).encode()
        if not hmac.compare_digest(watch_mac(key, self.record["stream"], leaves).encode(), recorded_mac):
            return (self.ids[0] if self.ids else None), f"entries observed unsealed at {at} were later changed"
        return None


def live_leaves(model, ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(ids), 5000):
        rows = model.objects.filter(pk__in=ids[start : start + 5000]).values(*row_columns(model))
        found.update((row["id"], leaf_hash(row)) for row in rows)
    return found


def check_watch(stream: str, model, record: dict, keys: dict[str, str]) -> tuple[int | None, str] | None:
    """Check one watch against the batches sealed since and the rows still unsealed: two queries."""
    watched = Watched(record)
    if not watched.ids:
        return None
    covering = AuditBatch.objects.filter(stream=stream, first_id__lte=watched.ids[-1], last_id__gte=watched.ids[0])
    for batch in covering.values("first_id", "last_id", "leaf_ids", "leaves"):
        watched.feed(batch["first_id"], batch["last_id"], dict(zip(batch["leaf_ids"], batch["leaves"], strict=False)))
    rest = watched.unresolved()
    if rest:
        watched.feed_live(live_leaves(model, rest))
    return watched.problem(keys)
