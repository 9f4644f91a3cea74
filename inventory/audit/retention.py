"""Retention without losing the proof: a closed month of a stream archived with its sealed batches and anchor records.

An archive is one gzip'd NDJSON file in the storage AUDIT_ARCHIVE_STORAGE names (a filesystem folder, or an
S3-compatible bucket through django-storages):

    {"kind": "archive", "stream", "month", "first_seq", "last_seq", "first_id", "last_id", "prev_digest", ...}
    {"kind": "batch", ...}      every batch of the month, whole, in seq order (its rows can be re-hashed from the file)
    {"kind": "anchor", ...}     the anchor's records of those batches, as the anchor held them
    {"kind": "row", "row": {}}  every row those batches cover, in id order, every column the leaf hash covers
    {"kind": "end", "rows", "batches"}

The month is taken by the time the portal recorded a row (never the client's occurred_at) and widened to whole batches,
so that the file holds everything its batches' digests cover. `verify_archive` re-checks a file offline with nothing
but the seal keys: each batch's HMAC and its chain to the one before, the contiguous id ranges and their absent ids,
every row against its leaf, and that each digest is the one the anchor recorded. The job archives, reads the file back
from the storage and verifies it, then records it (AuditArchive, an audit entry, and an `archive` record in the anchor
with the file's SHA-256) so that a later verification knows those batches' rows left on purpose.
"""

import contextlib
import gzip
import hashlib
import hmac
import io
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from inventory.audit.anchor import get_anchor
from inventory.audit.hashes import GENESIS, batch_digest, id_gaps, key_id, leaf_hash, range_digest, seal_keys
from inventory.audit.keyset import id_at
from inventory.audit.record import GRACE, audit_record
from inventory.audit.sealing import STREAMS, TIME_FIELDS, _rows
from inventory.models import AuditArchive, AuditBatch

FORMAT = 1
BATCH_FIELDS = ("seq", "first_id", "last_id", "entry_count", "leaf_ids", "leaves", "missing_ids", "key_id", "digest",
                "prev_digest", "sealed_at")  # fmt: skip


class ArchiveRefused(Exception):
    """The month cannot be archived (yet): open, not sealed through, or archived already."""


# Storage -----------------------------------------------------------------------------------------------------------


def archive_storage() -> Storage:
    """The storage AUDIT_ARCHIVE_STORAGE names: {"BACKEND": dotted path, "OPTIONS": {...}}."""
    config = settings.AUDIT_ARCHIVE_STORAGE
    return import_string(config["BACKEND"])(**config.get("OPTIONS", {}))


# Writing -----------------------------------------------------------------------------------------------------------


def _month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _line(record: dict) -> bytes:
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder) + "\n").encode()


def _plan(stream: str, month: date) -> tuple[list[AuditBatch], str]:
    """The month's whole batches and the digest before the first; refuses an open, unsealed or archived month."""
    model, time_field = STREAMS[stream], TIME_FIELDS[stream]
    start, end = _month_bounds(month)
    if end > timezone.now() - GRACE:
        raise ArchiveRefused(f"{month:%Y-%m} is not closed yet")
    first_id, last_id = id_at(model, time_field, start), id_at(model, time_field, end) - 1
    if last_id < first_id:
        raise ArchiveRefused(f"the {stream} stream has nothing recorded in {month:%Y-%m}")
    batches = list(
        AuditBatch.objects.filter(stream=stream, last_id__gte=first_id, first_id__lte=last_id).order_by("seq")
    )
    if not batches or batches[-1].last_id < last_id or batches[0].first_id > first_id:
        raise ArchiveRefused(f"{month:%Y-%m} of the {stream} stream is not sealed through yet")
    # A batch sealed across the turn of the month went whole into the month before's archive: start after it.
    done = AuditArchive.objects.filter(stream=stream, last_seq__gte=batches[0].seq, first_seq__lte=batches[0].seq)
    carried = done.values_list("last_seq", flat=True).first()
    if carried is not None and carried < batches[-1].seq:
        batches = [batch for batch in batches if batch.seq > carried]
    first_seq, last_seq = batches[0].seq, batches[-1].seq
    if AuditArchive.objects.filter(stream=stream, first_seq__lte=last_seq, last_seq__gte=first_seq).exists():
        raise ArchiveRefused(f"batches {first_seq} to {last_seq} of the {stream} stream are archived already")
    before = AuditBatch.objects.filter(stream=stream, seq=first_seq - 1).values_list("digest", flat=True).first()
    return batches, before or GENESIS


def _anchored(stream: str, first_seq: int, last_seq: int) -> list[dict]:
    return [
        record
        for record in get_anchor().records()
        if record.get("stream") == stream
        and record.get("kind") == "batch"
        and first_seq <= int(record["seq"]) <= last_seq
    ]


def write_archive(stream: str, month: date, target) -> dict:
    """Write the month's archive (gzip NDJSON) to a binary file object; returns its header."""
    model = STREAMS[stream]
    batches, prev_digest = _plan(stream, month)
    header = {
        "kind": "archive", "format": FORMAT, "stream": stream, "month": f"{month:%Y-%m}",
        "first_seq": batches[0].seq, "last_seq": batches[-1].seq, "first_id": batches[0].first_id,
        "last_id": batches[-1].last_id, "prev_digest": prev_digest, "created_at": timezone.now(),
        "key_id": key_id(settings.AUDIT_SEAL_KEY),
    }  # fmt: skip
    rows = 0
    with gzip.GzipFile(fileobj=target, mode="wb", mtime=0) as out:
        out.write(_line(header))
        for batch in batches:
            out.write(_line({"kind": "batch", **{name: getattr(batch, name) for name in BATCH_FIELDS}}))
        for record in _anchored(stream, header["first_seq"], header["last_seq"]):
            out.write(_line({"kind": "anchor", "record": record}))
        for row in _rows(model, header["first_id"] - 1, header["last_id"]):
            out.write(_line({"kind": "row", "row": row}))
            rows += 1
        out.write(_line({"kind": "end", "rows": rows, "batches": len(batches)}))
    header["rows"] = rows
    return header


def archive_mac(key: str, archive: dict) -> str:
    message = (
        f"archive:{archive['stream']};seq:{archive['first_seq']}-{archive['last_seq']};"
        f"ids:{archive['first_id']}-{archive['last_id']};rows:{archive['rows']};sha256:{archive['sha256']};"
        f"name:{archive['name']}"
    )
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


class _HashingReader(io.RawIOBase):
    """A binary file read through, SHA-256 of every byte read kept on the way."""

    def __init__(self, raw):
        self.raw, self.sha256 = raw, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read what the verifier left (it stops at the first problem), so that the digest is of the whole file."""
        while chunk := self.raw.read(1 << 20):
            self.sha256.update(chunk)


def archive_month(*, stream: str, month: date, actor=None) -> AuditArchive:
    """Archive a closed month to the storage, read it back and verify it, then record it (row, audit entry, anchor)."""
    storage = archive_storage()
    with tempfile.TemporaryFile() as spool:
        header = write_archive(stream, month, spool)
        spool.seek(0)
        digest = hashlib.file_digest(spool, "sha256").hexdigest()
        size = spool.tell()
        spool.seek(0)
        name = storage.save(
            f"audit-archive/{stream}/{header['month']}-batches-{header['first_seq']}-{header['last_seq']}.ndjson.gz",
            File(spool),
        )
    # Read back as a stream, hashed as it is verified: a month of a busy gateway does not fit in memory.
    with storage.open(name, "rb") as stored:
        reader = _HashingReader(stored)
        result = verify_archive(reader)
        reader.drain()
    if reader.sha256.hexdigest() != digest:
        raise ArchiveRefused(f"the storage returned something else than was written to {name}")
    if not result.ok:
        raise ArchiveRefused(f"the archive {name} does not verify: {result.problem}")
    record = {**{k: header[k] for k in ("stream", "first_seq", "last_seq", "first_id", "last_id", "rows")},
              "sha256": digest, "name": name}  # fmt: skip
    with transaction.atomic():
        archive = AuditArchive.objects.create(
            **record,
            month=month.replace(day=1),
            size=size,
            key_id=key_id(settings.AUDIT_SEAL_KEY),
            mac=archive_mac(settings.AUDIT_SEAL_KEY, record),
        )
        audit_record(
            actor=actor, action="audit.archived", obj=archive, after={**record, "month": header["month"]},
            actor_label=None if actor else "retention job",
        )  # fmt: skip
        anchor_record = {"kind": "archive", **record, "month": header["month"], "archived_at": archive.created_at}
        transaction.on_commit(lambda: get_anchor().append(anchor_record))
    return archive


def archive_closed_months(*, older_than_months: int, drop: bool | None = None) -> list[AuditArchive]:
    """The retention job: archive every month of each stream that closed more than `older_than_months` months ago and
    is not archived yet, oldest first; a month that cannot be archived yet (not sealed through) waits for the next run.

    Then, on PostgreSQL (inventory/audit/partitions.py): the access events' partitions for the coming months are
    created, and each partition of those months whose rows are now all in verified archives is detached and dropped
    (`drop`, default settings.AUDIT_ARCHIVE_DROP). Audit entries are kept: they are few, and not partitioned."""
    from inventory.audit import partitions

    now = timezone.now()
    limit = date(now.year, now.month, 1)
    for _ in range(older_than_months):
        limit = (limit - timedelta(days=1)).replace(day=1)
    partitions.ensure_ahead()
    made = []
    for stream, model in STREAMS.items():
        first = model.objects.order_by("pk").values_list(TIME_FIELDS[stream], flat=True).first()
        if first is None:
            continue
        month = date(first.year, first.month, 1)
        while month < limit:
            archived = AuditArchive.objects.filter(stream=stream, month=month).exists()
            if not archived:
                # Refused: nothing recorded that month, or all of it went with the month before.
                with contextlib.suppress(ArchiveRefused):
                    made.append(archive_month(stream=stream, month=month))
            month = (month + timedelta(days=32)).replace(day=1)
    if partitions.drop_enabled() if drop is None else drop:
        partitions.drop_archived(before=limit)
    return made


# Verifying ---------------------------------------------------------------------------------------------------------


@dataclass
class ArchiveResult:
    ok: bool
    checked: int = 0
    first_bad: int | None = None
    problem: str = ""
    header: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "first_bad": self.first_bad, "problem": self.problem,
                "stream": self.header.get("stream"), "month": self.header.get("month"),
                "first_seq": self.header.get("first_seq"), "last_seq": self.header.get("last_seq")}  # fmt: skip


def _records(fileobj) -> Iterator[dict]:
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as lines:
        for raw in lines:
            yield json.loads(raw)


def verify_archive(fileobj, anchor_records: Iterable[dict] | None = None) -> ArchiveResult:
    """Check an archive offline with the seal keys (AUDIT_SEAL_KEY and AUDIT_SEAL_OLD_KEYS); `anchor_records`, when
    given (the anchor file itself), must hold every batch digest as well. No database is read."""
    keys = seal_keys()
    try:
        return _verify(_records(fileobj), keys, anchor_records)
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        return ArchiveResult(False, problem=f"the archive is unreadable or truncated: {type(error).__name__}")


def _verify(records: Iterator[dict], keys: dict[str, str], anchor_records) -> ArchiveResult:
    header = next(records)
    if header.get("kind") != "archive" or header.get("format") != FORMAT:
        return ArchiveResult(False, problem="not an audit archive of a known format")
    batches, anchored = [], {}
    record = next(records)
    while record["kind"] == "batch":
        batches.append(record)
        record = next(records)
    while record["kind"] == "anchor":
        anchored.setdefault(int(record["record"]["seq"]), set()).add(record["record"]["digest"])
        record = next(records)
    if anchor_records is not None:
        outside = {}
        for item in anchor_records:
            if item.get("stream") == header["stream"] and item.get("kind") == "batch":
                outside.setdefault(int(item["seq"]), set()).add(item["digest"])
        anchored = outside

    def bad(pk, text):
        return ArchiveResult(False, checked, pk, text, header)

    checked = 0
    prev, prev_last = header["prev_digest"], header["first_id"] - 1
    expected_seq = header["first_seq"]
    pending = record
    for batch in batches:
        if batch["seq"] != expected_seq:
            return bad(None, f"batch {expected_seq} is missing from the archive")
        expected_seq += 1
        key = keys.get(batch["key_id"] or key_id(settings.AUDIT_SEAL_KEY))
        if key is None:
            return bad(None, f"batch {batch['seq']} was sealed with key id {batch['key_id']}, which is not configured")
        if batch["prev_digest"] != prev:
            return bad(None, f"batch {batch['seq']} does not chain to the batch before it")
        recorded = list(zip(batch["leaf_ids"], batch["leaves"], strict=True))
        if batch["key_id"]:
            if (
                batch["first_id"] != prev_last + 1
                or id_gaps(batch["first_id"], batch["last_id"], batch["leaf_ids"]) != batch["missing_ids"]
            ):
                return bad(None, f"batch {batch['seq']} itself was altered")
            digest = range_digest(key, prev, batch["first_id"], batch["last_id"], batch["missing_ids"], recorded)
        else:
            digest = batch_digest(prev, recorded, key)
        if not hmac.compare_digest(digest, batch["digest"]):
            return bad(None, f"batch {batch['seq']} itself was altered")
        if batch["digest"] not in anchored.get(batch["seq"], set()):
            return bad(None, f"batch {batch['seq']}'s digest is not the one the anchor recorded")
        for pk, leaf in recorded:
            if pending["kind"] != "row":
                return bad(pk, f"entry {pk} is missing from the archive")
            row = pending["row"]
            if row["id"] != pk:
                return bad(row["id"] if row["id"] < pk else pk, f"entry {min(row['id'], pk)} does not belong here")
            if leaf_hash(row, legacy=not batch["key_id"]) != leaf:
                return bad(pk, f"entry {pk} differs from what was sealed")
            checked += 1
            pending = next(records)
        prev, prev_last = batch["digest"], batch["last_id"]
    if pending["kind"] != "end" or pending.get("rows") != checked or next(records, None) is not None:
        return bad(None, "the archive holds rows no batch covers, or its end is missing")
    if expected_seq != header["last_seq"] + 1:
        return bad(None, "the archive's batches end early")
    return ArchiveResult(True, checked, None, "", header)
