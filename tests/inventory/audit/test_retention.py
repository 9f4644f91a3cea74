"""Issue 17: a closed month archived with its batches and anchor records, verified offline with the key."""

import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import TestCase

from inventory.audit import retention, sealing
from inventory.audit.anchor import get_anchor
from inventory.models import AuditArchive, AuditEntry
from tests.services import moto_server

from .helpers import events

pytestmark = pytest.mark.django_db
MONTH = date(2026, 3, 1)


@pytest.fixture
def archive_dir(settings, tmp_path):
    settings.AUDIT_ARCHIVE_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "archive")},
    }
    return tmp_path / "archive"


def _month_of_events(day: int, n: int, month: date = MONTH):
    """n events recorded on that day, sealed (and anchored) a minute later."""
    at = datetime(month.year, month.month, day, 12, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        made = events(n)
    with time_machine.travel(at + timedelta(minutes=1)), TestCase.captureOnCommitCallbacks(execute=True):
        sealing.seal_all()
    return made


@pytest.fixture
def sealed_months():
    before = _month_of_events(27, 2, date(2026, 2, 1))
    march = _month_of_events(3, 3) + _month_of_events(20, 2)
    april = _month_of_events(2, 2, date(2026, 4, 1))
    return before, march, april


def _archive(**kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return retention.archive_month(stream="events", month=MONTH, **kwargs)


def test_archive_holds_the_month_whole_batches_and_verifies_offline(sealed_months, archive_dir):
    _before, march, _april = sealed_months
    archive = _archive()
    assert (archive.first_id, archive.last_id, archive.rows) == (march[0].pk, march[-1].pk, 5)
    path = archive_dir / archive.name
    lines = _read(path)
    assert [line["kind"] for line in lines].count("row") == 5 and lines[-1] == {"kind": "end", "rows": 5, "batches": 2}
    assert AuditEntry.objects.filter(action="audit.archived").count() == 1
    anchored = [r for r in get_anchor().records() if r.get("kind") == "archive"]
    assert anchored and anchored[0]["sha256"] == archive.sha256
    out = StringIO()
    call_command("verify_audit", archive=str(path), anchor=str(get_anchor().path), stdout=out)
    assert "OK: 5 events rows of 2026-03 verified" in out.getvalue()


def _read(path) -> list[dict]:
    with gzip.open(path) as handle:
        return [json.loads(line) for line in handle]


def _rewrite(path, change) -> None:
    lines = _read(path)
    change(lines)
    with gzip.open(path, "wb") as out:
        for line in lines:
            out.write((json.dumps(line) + "\n").encode())


def test_a_changed_row_a_dropped_row_or_the_wrong_key_fail(sealed_months, archive_dir, settings):
    archive = _archive()
    path = archive_dir / archive.name
    original = path.read_bytes()

    def edit(lines):
        next(line for line in lines if line["kind"] == "row")["row"]["reason"] = "edited"

    _rewrite(path, edit)
    with pytest.raises(CommandError, match="differs from what was sealed"):
        call_command("verify_audit", archive=str(path), stdout=StringIO())

    path.write_bytes(original)
    _rewrite(path, lambda lines: lines.pop(next(i for i, line in enumerate(lines) if line["kind"] == "row")))
    with pytest.raises(CommandError, match=r"does not belong here|is missing"):
        call_command("verify_audit", archive=str(path), stdout=StringIO())

    path.write_bytes(original[: len(original) // 2])
    with pytest.raises(CommandError, match="unreadable or truncated"):
        call_command("verify_audit", archive=str(path), stdout=StringIO())

    path.write_bytes(original)
    settings.AUDIT_SEAL_KEY = "another-key"
    with pytest.raises(CommandError, match="not configured"):
        call_command("verify_audit", archive=str(path), stdout=StringIO())


def test_a_resealed_archive_is_caught_by_the_anchor(sealed_months, archive_dir, tmp_path):
    archive = _archive()
    other_anchor = tmp_path / "other-anchor.jsonl"
    other_anchor.write_text(json.dumps({"kind": "batch", "stream": "events", "seq": archive.first_seq,
                                        "digest": "0" * 64}) + "\n")  # fmt: skip
    with pytest.raises(CommandError, match="not the one the anchor recorded"):
        call_command(
            "verify_audit", archive=str(archive_dir / archive.name), anchor=str(other_anchor), stdout=StringIO()
        )


def test_open_unsealed_or_archived_months_are_refused(sealed_months, archive_dir):
    with pytest.raises(retention.ArchiveRefused, match="not closed"):
        retention.archive_month(stream="events", month=date.today().replace(day=1))
    _archive()
    with pytest.raises(retention.ArchiveRefused, match="archived already"):
        _archive()
    with pytest.raises(retention.ArchiveRefused, match="nothing recorded"):
        retention.archive_month(stream="events", month=date(2025, 1, 1))
    assert AuditArchive.objects.count() == 1


def test_a_month_not_sealed_through_is_refused(archive_dir):
    at = datetime(2026, 3, 5, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        events(2)
    with pytest.raises(retention.ArchiveRefused, match="not sealed through"):
        retention.archive_month(stream="events", month=MONTH)


def test_the_archive_is_verified_after_reading_it_back(sealed_months, archive_dir):
    archive = _archive()
    data = (archive_dir / archive.name).read_bytes()
    assert retention.verify_archive(io.BytesIO(data)).ok
    assert not retention.verify_archive(io.BytesIO(b"not gzip")).ok


@pytest.fixture
def s3_bucket(settings):
    """A real S3 API: moto in server mode on a local port, spoken to over HTTP by boto3 and django-storages."""
    import boto3

    with moto_server() as endpoint:
        credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
        boto3.client("s3", endpoint_url=endpoint, **credentials).create_bucket(Bucket="nhi-audit-archive")
        settings.AUDIT_ARCHIVE_STORAGE = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "nhi-audit-archive", "endpoint_url": endpoint, "access_key": "test",
                        "secret_key": "test", "region_name": "us-east-1", "file_overwrite": False,
                        "default_acl": None},
        }  # fmt: skip
        yield boto3.client("s3", endpoint_url=endpoint, **credentials)


def test_archive_to_an_s3_compatible_bucket(sealed_months, s3_bucket, tmp_path):
    archive = _archive()
    body = s3_bucket.get_object(Bucket="nhi-audit-archive", Key=archive.name)["Body"].read()
    assert archive.size == len(body)
    downloaded = tmp_path / "downloaded.ndjson.gz"
    downloaded.write_bytes(body)
    out = StringIO()
    call_command("verify_audit", archive=str(downloaded), stdout=out)
    assert "OK: 5 events rows of 2026-03 verified" in out.getvalue()


def test_the_job_archives_each_closed_month_once_even_with_a_batch_across_the_turn(archive_dir):
    # One batch takes the last event of February and the first of March: sealed together after both.
    with time_machine.travel(datetime(2026, 2, 28, 23, 59, 50, tzinfo=UTC), tick=False):
        events(1)
    with time_machine.travel(datetime(2026, 3, 1, 0, 0, 5, tzinfo=UTC), tick=False):
        events(1)
    with time_machine.travel(datetime(2026, 3, 1, 0, 1, tzinfo=UTC)), TestCase.captureOnCommitCallbacks(execute=True):
        sealing.seal_all()
    _month_of_events(10, 2)
    with time_machine.travel(datetime(2026, 6, 15, tzinfo=UTC)), TestCase.captureOnCommitCallbacks(execute=True):
        made = retention.archive_closed_months(older_than_months=1)
        assert retention.archive_closed_months(older_than_months=1) == []
    assert [(a.month, a.rows) for a in made] == [(date(2026, 2, 1), 2), (date(2026, 3, 1), 2)]
    assert made[1].first_seq == made[0].last_seq + 1
