"""Verification runs: queued by security or the schedule, run by a worker, read by the pages and the API.

- Incremental (every few minutes from beat): from each stream's checkpoint to the newest batch, so it costs what was
  sealed since the last run; it moves the checkpoints on.
- Full (nightly, on request, and whenever a checkpoint does not verify): the whole chain from the start, with
  progress, in the background; it also rebuilds the checkpoints. `manage.py verify_audit` runs one in the foreground.
Nothing here re-hashes inside a web request: the request queues a run and reads the latest verdict.
"""

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inventory.audit import checkpoint
from inventory.audit.hashes import seal_keys
from inventory.audit.sealing import STREAMS
from inventory.audit.verify import Problem, VerifyResult, verify_from
from inventory.models import AuditBatch, AuditVerification

logger = logging.getLogger(__name__)

Kind = AuditVerification.Kind
Status = AuditVerification.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)
KEEP_INCREMENTAL = timedelta(days=30)


def verification_queue(*, kind: str, requested_by: str) -> tuple[AuditVerification, bool]:
    """A queued run of that kind, and whether it is new: one already queued or running is returned instead, so
    pressing the button twice does not queue two. The caller queues the task after commit when it is new."""
    with transaction.atomic():
        # Two requests at the same instant may both queue one; the second run is merely redundant.
        active = AuditVerification.objects.filter(kind=kind, status__in=ACTIVE).order_by("-id").first()
        if active is not None:
            return active, False
        return AuditVerification.objects.create(kind=kind, requested_by=requested_by[:150]), True


def verification_run(run_id: int) -> AuditVerification | None:
    """Run a queued verification (the Celery task). A run that is not queued any more (done, or taken by another
    worker) is left alone."""
    now = timezone.now()
    claimed = AuditVerification.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, batches_total=_batches_to_check(run_id)
    )
    if not claimed:
        return None
    run = AuditVerification.objects.get(pk=run_id)
    started = time.monotonic()
    try:
        result = _execute(run)
    except Exception as error:
        AuditVerification.objects.filter(pk=run_id).update(
            status=Status.FAILED, finished_at=timezone.now(), result={"error": type(error).__name__}
        )
        raise
    _finish(run, result, time.monotonic() - started)
    # Incremental runs come every few minutes: a month of them is history enough (full runs are kept).
    AuditVerification.objects.filter(
        kind=Kind.INCREMENTAL, status=Status.DONE, finished_at__lt=timezone.now() - KEEP_INCREMENTAL
    ).delete()
    return AuditVerification.objects.get(pk=run_id)


def verification_now(*, kind: str, requested_by: str) -> tuple[AuditVerification, VerifyResult]:
    """Queue and run at once in this process (the management command and tests): recorded like any other run."""
    run = AuditVerification.objects.create(kind=kind, requested_by=requested_by[:150])
    run = verification_run(run.pk)
    return run, _result_of(run)


def _batches_to_check(run_id: int) -> int:
    kind = AuditVerification.objects.filter(pk=run_id).values_list("kind", flat=True).first()
    if kind == Kind.FULL:
        return AuditBatch.objects.count()
    total = 0
    for stream in STREAMS:
        state, _problem = checkpoint.load(stream)
        total += AuditBatch.objects.filter(stream=stream, seq__gt=state.seq).count()
    return total


def _execute(run: AuditVerification) -> VerifyResult:
    def progress(batches: int) -> None:
        AuditVerification.objects.filter(pk=run.pk).update(batches_done=F("batches_done") + batches)

    starts, problems = {}, []
    for stream in STREAMS:
        state, problem = checkpoint.load(stream) if run.kind == Kind.INCREMENTAL else (checkpoint.StreamState(), None)
        starts[stream] = state
        if problem:
            problems.append((stream, problem))
    result, states = verify_from(starts, progress=progress)
    for stream, state in states.items():
        if state is not None:
            checkpoint.save(stream, state)
    if problems:
        # A checkpoint that does not verify is itself tampering; the run went on from the start of the chain.
        logger.error("Audit verification checkpoints: %s", "; ".join(f"{s}: {p}" for s, p in problems))
        extra = tuple(Problem(stream, None, None, text) for stream, text in problems)
        first = extra[0]
        return VerifyResult(
            False, result.checked, None, first.stream, None, first.problem, extra + result.problems
        )  # fmt: skip
    return result


def _finish(run: AuditVerification, result: VerifyResult, seconds: float) -> None:
    finished = timezone.now()
    detail = result.as_dict()
    mac = result_mac(settings.AUDIT_SEAL_KEY, run.pk, result.ok, result.checked, result.first_bad, finished)
    AuditVerification.objects.filter(pk=run.pk).update(
        status=Status.DONE,
        finished_at=finished,
        ok=result.ok,
        checked=result.checked,
        first_bad=result.first_bad,
        result=detail,
        seconds=round(seconds, 3),
        mac=mac,
    )
    if not result.ok:
        logger.error("Audit chain check failed in %s: %s (first bad entry %s)", result.stream, result.problem,
                     result.first_bad)  # fmt: skip


def result_mac(key: str, run_id: int, ok: bool | None, checked: int, first_bad: int | None, at: datetime) -> str:
    message = f"verification:{run_id};ok:{ok};checked:{checked};first_bad:{first_bad};at:{at.isoformat()}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def _genuine(run: AuditVerification) -> bool:
    if run.finished_at is None:
        return False
    return any(
        hmac.compare_digest(result_mac(key, run.pk, run.ok, run.checked, run.first_bad, run.finished_at), run.mac)
        for key in seal_keys().values()
    )


def _result_of(run: AuditVerification | None) -> VerifyResult:
    if run is None or run.status != Status.DONE:
        return VerifyResult(False, 0, problem="no verification has finished yet")
    if not _genuine(run):
        return VerifyResult(False, 0, problem=f"verification result {run.pk} was altered in the database")
    detail = run.result or {}
    problems = tuple(Problem(**p) for p in detail.get("problems", []))
    return VerifyResult(
        bool(run.ok), run.checked, run.first_bad, detail.get("stream"), detail.get("batch"), detail.get("problem", ""),
        problems,
    )  # fmt: skip


def verification_status() -> dict:
    """What the API and the page show: the latest finished run's verdict (`ok`, `checked`, `first_bad`, the problem),
    `as_of` (when it finished) and `kind`, and whether a run is queued or `running`, with its progress."""
    latest = AuditVerification.objects.filter(status=Status.DONE).order_by("-finished_at", "-id").first()
    active = AuditVerification.objects.filter(status__in=ACTIVE).order_by("-id").first()
    last_full = (
        AuditVerification.objects.filter(status=Status.DONE, kind=Kind.FULL)
        .order_by("-finished_at", "-id")
        .values_list("finished_at", flat=True)
        .first()
    )
    data = _result_of(latest).as_dict()
    data.update(
        as_of=latest.finished_at if latest else None,
        kind=latest.kind if latest else None,
        seconds=latest.seconds if latest else None,
        last_full_at=last_full,
        running=active is not None,
        run=(
            {
                "id": active.pk,
                "kind": active.kind,
                "status": active.status,
                "batches_done": active.batches_done,
                "batches_total": active.batches_total,
                "requested_by": active.requested_by,
            }
            if active
            else None
        ),
    )
    return data


def verification_lag() -> float | None:
    """Seconds since the newest finished verification of any kind (None: never ran): for readiness and metrics."""
    done = AuditVerification.objects.filter(status=Status.DONE).order_by("-finished_at")
    finished = done.values_list("finished_at", flat=True).first()
    return None if finished is None else (timezone.now() - finished).total_seconds()


def unverified_batches() -> int:
    """Batches sealed after the checkpoints, that no incremental run has verified yet: for readiness and metrics."""
    total = 0
    for stream in STREAMS:
        state, _problem = checkpoint.load(stream)
        total += AuditBatch.objects.filter(stream=stream, seq__gt=state.seq).count()
    return total
