"""The audit chain's anchor: a write-once log outside the database that the sealing job appends to.

Someone who can write to the database can delete or re-seal batches there; they should not also be able to rewrite
what was written here. The anchor is a sequence of JSON records, appended to and read back, nothing else. A store
needs `append` and `records`; the file store below also reads newest first without reading the whole file, which
the sealing job does every minute. An S3-compatible store (object lock, one object per run) fits the same shape.

The file store is only as write-once as the file is: keep it where the database's writers cannot reach, on another
host or volume, ideally with the append-only attribute (`chattr +a`) and shipped to WORM storage.
"""

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger(__name__)

_BLOCK = 64 * 1024


class Anchor:
    """A write-once sequence of JSON records."""

    def append(self, record: dict) -> None:
        raise NotImplementedError

    def records(self) -> Iterator[dict]:
        """Every record, oldest first."""
        raise NotImplementedError

    def extend(self, records: Iterable[dict]) -> None:
        for record in records:
            self.append(record)

    def newest_first(self) -> Iterator[dict]:
        return reversed(list(self.records()))

    def records_after(self, position: int = 0) -> Iterator[tuple[dict, int]]:
        """The records after `position`, oldest first, each with the position after it: incremental verification
        stores the last one and reads on from there. Here a position counts records; a store may use its own unit."""
        for index, record in enumerate(self.records()):
            if index >= position:
                yield record, index + 1


class FileAnchor(Anchor):
    """JSON lines in one file, appended with O_APPEND and fsync'd before the write returns."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, record: dict) -> None:
        self.extend([record])

    def extend(self, records: Iterable[dict]) -> None:
        data = "".join(_line(record) for record in records).encode()
        if not data:
            return
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            # Two seal runs may overlap (a slow run and the next beat); their lines must not interleave.
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            # A line torn by a crash mid-write must not swallow the first record of this write.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.path.parent)

    def records(self) -> Iterator[dict]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for raw in handle:
                if raw.endswith(b"\n"):
                    record = _parse(raw, self.path)
                    if record is not None:
                        yield record

    def records_after(self, position: int = 0) -> Iterator[tuple[dict, int]]:
        """Positions are byte offsets: a run reads only what was appended since the last one."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            handle.seek(position)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    return  # a line still being written (or torn by a crash): the next run reads it
                position += len(raw)
                record = _parse(raw, self.path)
                if record is not None:
                    yield record, position

    def newest_first(self) -> Iterator[dict]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            position = handle.seek(0, os.SEEK_END)
            carry = b""
            tail_dropped = False
            while position > 0:
                step = min(_BLOCK, position)
                position -= step
                handle.seek(position)
                lines = (handle.read(step) + carry).split(b"\n")
                carry = lines.pop(0)
                if lines and not tail_dropped:
                    # After the last newline: nothing, or a line torn by a crash. Skipped either way.
                    lines.pop()
                    tail_dropped = True
                for raw in reversed(lines):
                    record = _parse(raw, self.path)
                    if record is not None:
                        yield record
            if carry and tail_dropped:
                record = _parse(carry, self.path)
                if record is not None:
                    yield record


def get_anchor() -> Anchor:
    """The store named by AUDIT_ANCHOR_PATH."""
    location = str(getattr(settings, "AUDIT_ANCHOR_PATH", "") or "")
    if not location:
        raise ImproperlyConfigured("Set AUDIT_ANCHOR_PATH: the audit chain's anchor outside the database.")
    if "://" in location and not location.startswith("file://"):
        raise ImproperlyConfigured(f"No audit anchor store for {location.split('://', 1)[0]}:// yet; use a file path.")
    return FileAnchor(location.removeprefix("file://"))


def _line(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder) + "\n"


def _parse(raw: bytes, path: Path) -> dict | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        # What a crash mid-write leaves behind; the write after it starts on a new line.
        logger.warning("Skipping an unreadable line in the audit anchor %s", path)
        return None


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
