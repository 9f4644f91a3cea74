"""The SIEM export: access events (decisions, observed usage, tool listings) and audit entries as NDJSON.

Each stream is read in id order from a resumable cursor that holds both positions, so a reader that stops anywhere
carries on from there with no line lost or repeated. Only sealed rows are exported: a sealed range has no gaps left to
fill (sealing waits out the grace period for late commits), so an id-ordered reader never skips a row that commits
after it read past its id, and every line a SIEM holds is one the hash chain covers. A line carries every column the
row's leaf hash covers (`type` says which stream), merged across the two streams by the time the portal recorded it.
"""

import base64
import binascii
import heapq
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder

from inventory.audit.hashes import row_columns
from inventory.models import AccessEvent, AuditBatch, AuditEntry

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
# (line type, model, sealing stream, time column)
STREAMS = (
    ("access_event", AccessEvent, AuditBatch.Stream.EVENTS, "recorded_at"),
    ("audit_entry", AuditEntry, AuditBatch.Stream.AUDIT, "created_at"),
)
# The cursor as it is given out and read back, `EVENT:ENTRY`: the last access event id and audit entry id read (18
# digits at most, within a bigint); none or empty: from the start. The API documents this pattern (a regular expression
# that ECMA and Python read alike), so that every string it allows is a cursor this export reads; matched whole.
CURSOR_PATTERN = r"^([0-9]{1,18}):([0-9]{1,18})$"
_CURSOR = re.compile(CURSOR_PATTERN)


class BadCursor(ValueError):
    """The cursor is not one this export gave out."""


def _legacy(text: str) -> str:
    """The first form of the cursor (base64 of `EVENT:ENTRY`, given out for a day before the plain form), as the SIEM
    push may have stored it: read once more, never given out. Anything else reads as nothing."""
    if len(text) > 64:
        return ""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


@dataclass(frozen=True)
class Cursor:
    """Positions in both streams: the last access event id and the last audit entry id read."""

    event_id: int = 0
    entry_id: int = 0

    def encode(self) -> str:
        return f"{self.event_id}:{self.entry_id}"

    @classmethod
    def decode(cls, text: str | None, *, legacy: bool = False) -> "Cursor":
        """`legacy`: also the first form, for the cursor the SIEM push stored (the API reads the documented form)."""
        if not text:
            return cls()
        match = _CURSOR.fullmatch(text)
        if match is None and legacy:
            match = _CURSOR.fullmatch(_legacy(text))
        if match is None:
            raise BadCursor("not a cursor this export gave out")
        return cls(int(match[1]), int(match[2]))

    def position(self, line_type: str) -> int:
        return self.event_id if line_type == "access_event" else self.entry_id


@dataclass(frozen=True)
class Page:
    lines: list[dict]
    next: Cursor
    more: bool


def sealed_through(stream: str) -> int:
    """The last id the stream's newest batch covers (0 before the first)."""
    batches = AuditBatch.objects.filter(stream=stream).order_by("-seq")
    return batches.values_list("last_id", flat=True).first() or 0


def export_page(cursor: Cursor, limit: int = DEFAULT_LIMIT) -> Page:
    """Up to `limit` lines after the cursor, oldest first; four queries whatever the limit."""
    streams = []
    more = False
    for line_type, model, stream, time_field in STREAMS:
        after = cursor.position(line_type)
        through = sealed_through(stream)
        rows = list(
            model.objects.filter(pk__gt=after, pk__lte=through).order_by("pk").values(*row_columns(model))[: limit + 1]
        )
        if len(rows) > limit:
            more = True
            rows = rows[:limit]
        streams.append([(row[time_field], line_type, {"type": line_type, **row}) for row in rows])
    # heapq.merge takes the smaller head each time, so each stream keeps its id order even where commit skew makes
    # its times run backwards for a moment.
    merged = heapq.merge(*streams, key=lambda item: (item[0], item[1]))
    lines = [line for _time, _type, line in _take(merged, limit)]
    positions = {"access_event": cursor.event_id, "audit_entry": cursor.entry_id}
    for line in lines:
        positions[line["type"]] = line["id"]
    consumed = len(lines)
    total = sum(len(rows) for rows in streams)
    return Page(lines, Cursor(positions["access_event"], positions["audit_entry"]), more or consumed < total)


def _take(items: Iterator, limit: int) -> list:
    taken = []
    for item in items:
        if len(taken) == limit:
            break
        taken.append(item)
    return taken


def line_time(line: dict) -> datetime:
    return line["recorded_at"] if line["type"] == "access_event" else line["created_at"]


def dumps(line: dict) -> str:
    return json.dumps(line, separators=(",", ":"), cls=DjangoJSONEncoder)


def ndjson(page: Page) -> Iterator[bytes]:
    """The page as NDJSON, ending with a `cursor` line naming where to carry on (also in the X-Next-Cursor header)."""
    for line in page.lines:
        yield (dumps(line) + "\n").encode()
    yield (dumps({"type": "cursor", "next": page.next.encode(), "more": page.more}) + "\n").encode()
