"""Issue 17: verification is incremental from a keyed checkpoint; a full run goes in the background with progress."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.audit import checkpoint, runs, sealing
from inventory.audit.verify import verify
from inventory.models import AuditBatch, AuditCheckpoint, AuditEntry, AuditVerification

from .helpers import entries, events, raw, seal

pytestmark = pytest.mark.django_db


def _run(kind: str):
    return runs.verification_now(kind=kind, requested_by="test")


def test_incremental_run_checks_only_what_was_sealed_since_the_checkpoint():
    entries(5)
    events(3)
    seal()
    first, result = _run("incremental")
    assert result.ok and result.checked == 8
    assert first.batches_total == 2 and first.batches_done == 2  # one batch per stream, both new
    entries(4)
    seal()
    second, result = _run("incremental")
    assert result.ok and result.checked == 12  # cumulative: what the checkpoints hold plus the new batch
    assert second.batches_total == 1 and second.batches_done == 1
    state, problem = checkpoint.load("audit")
    assert problem is None and state.seq == 2 and state.checked == 9
    assert state.digest == AuditBatch.objects.get(stream="audit", seq=2).digest


def test_incremental_run_with_nothing_new_reads_no_rows():
    entries(30)
    seal()
    _run("incremental")
    with CaptureQueriesContext(connection) as queries:
        _run("incremental")
    # No entry is re-hashed: no query reads their content (the leaf hash needs every column).
    assert not any('"inventory_auditentry"."after"' in q["sql"] for q in queries)
    assert len(queries) < 40  # a constant: checkpoints, batch heads, one id probe per stream


def test_tampering_after_the_checkpoint_is_named_and_the_checkpoint_does_not_move():
    entries(3)
    seal()
    _run("incremental")
    late = entries(3, start=3)
    seal()
    raw("UPDATE inventory_auditentry SET comment = 'edited' WHERE id = %s", [late[1].pk])
    _, result = _run("incremental")
    assert not result.ok and result.first_bad == late[1].pk and "was changed" in result.problem
    assert checkpoint.load("audit")[0].seq == 1  # still before the bad batch: the next run reports it again
    assert not _run("incremental")[1].ok


def test_full_run_finds_tampering_before_the_checkpoint_that_incremental_runs_trust():
    early = entries(3)
    seal()
    _run("incremental")
    raw("UPDATE inventory_auditentry SET comment = 'edited' WHERE id = %s", [early[0].pk])
    assert _run("incremental")[1].ok  # by design: rows before the checkpoint are the full run's job
    full, result = _run("full")
    assert not result.ok and result.first_bad == early[0].pk
    assert full.batches_done == full.batches_total == AuditBatch.objects.count()


def test_forged_checkpoint_is_reported_and_verification_starts_over():
    entries(3)
    seal()
    _run("incremental")
    entries(3, start=3)
    seal()
    # A database writer moves the checkpoint past the batch they are about to tamper with.
    raw("UPDATE inventory_auditcheckpoint SET batch_seq = 2 WHERE stream = 'audit'")
    _, result = _run("incremental")
    assert not result.ok and "checkpoint was altered" in result.problem
    assert result.checked == 6  # it verified from the start instead
    # A clean run rebuilt the checkpoint with the key: the next run is clean again.
    assert _run("incremental")[1].ok
    assert checkpoint.load("audit")[1] is None


def test_checkpoint_with_an_unknown_key_is_not_trusted(settings):
    entries(2)
    seal()
    _run("incremental")
    settings.AUDIT_SEAL_OLD_KEYS = [settings.AUDIT_SEAL_KEY]
    settings.AUDIT_SEAL_KEY = "a-new-key"
    assert checkpoint.load("audit")[1] is None  # the old key is still configured
    settings.AUDIT_SEAL_OLD_KEYS = []
    assert "not configured" in checkpoint.load("audit")[1]


def test_incremental_and_full_agree_with_the_synchronous_check():
    entries(4)
    events(2)
    seal()
    entries(2, start=4)
    seal()
    assert _run("incremental")[1].checked == verify().checked == _run("full")[1].checked == 8


def test_watched_entries_deleted_before_sealing_are_named_by_the_incremental_run():
    entries(2)
    seal()
    _run("incremental")
    fresh = entries(2, start=2)
    seal()
    newest = entries(1, start=9)
    with TestCase.captureOnCommitCallbacks(execute=True):
        sealing.seal_all()  # inside the grace period: nothing sealed, the new entry is watched
    raw("DELETE FROM inventory_auditentry WHERE id = %s", [newest[0].pk])
    _, result = _run("incremental")
    assert not result.ok and result.first_bad == newest[0].pk and "later deleted" in result.problem
    assert fresh  # sealed and intact


def test_status_shows_the_latest_verdict_and_a_running_run():
    assert runs.verification_status()["problem"] == "no verification has finished yet"
    entries(2)
    seal()
    _run("full")
    queued, new = runs.verification_queue(kind="full", requested_by="sec")
    again, new_again = runs.verification_queue(kind="full", requested_by="sec")
    assert new and not new_again and again.pk == queued.pk
    status = runs.verification_status()
    assert status["ok"] is True and status["checked"] == 2 and status["as_of"] is not None
    assert status["running"] is True and status["run"]["id"] == queued.pk and status["run"]["status"] == "queued"
    assert status["last_full_at"] is not None


def test_a_verdict_edited_in_the_database_is_not_believed():
    entries(2)
    seal()
    raw("DELETE FROM inventory_auditentry")
    run, result = _run("full")
    assert not result.ok
    raw("UPDATE inventory_auditverification SET ok = TRUE WHERE id = %s", [run.pk])
    status = runs.verification_status()
    assert status["ok"] is False and "altered" in status["problem"]


def test_lag_functions_for_readiness_and_metrics():
    assert runs.verification_lag() is None
    entries(2)
    seal()
    assert runs.unverified_batches() == 1
    _run("incremental")
    assert runs.unverified_batches() == 0
    assert 0 <= runs.verification_lag() < 60


def test_the_audit_entries_survive_untouched():
    entries(1)
    seal()
    _run("full")
    assert AuditEntry.objects.count() == 1 and AuditCheckpoint.objects.count() == 2
    assert AuditVerification.objects.get().status == "done"


def test_sealing_behind_is_reported_but_does_not_hold_the_checkpoint_back():
    entries(3)
    seal()
    late = entries(1, start=3)
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        _, result = _run("incremental")
    assert not result.ok and "sealing is behind" in result.problem and result.first_bad == late[0].pk
    assert checkpoint.load("audit")[0].seq == 1
