"""Running detectors: each detector's subjects are applied to its findings in SQL (see apply.py), one transaction
per detector, which also records the detector's run and the scan's counts.

A scan is idempotent: re-running it, or running it after a worker died half way, converges on the same findings,
because a finding is unique per (detector, subject), and a redelivered scan skips the detectors it already
committed. The database allows one running scan at a time.
"""

import logging
import time
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from inventory.models import DetectorRun, Finding, Scan
from nhi_portal import metrics

from . import registry
from .alerts import alerts_queue
from .apply import apply_subjects, lock_detector

logger = logging.getLogger(__name__)

# A scan still "running" after this long belongs to a worker that died; it no longer blocks new scans.
STALE_AFTER = timedelta(minutes=30)


class ScanBusy(Exception):
    """Another scan is running."""


def _locked_counts(scan: Scan) -> dict:
    """The scan's counts as committed, with its row locked until the transaction ends: a scan redelivered while its
    first worker still runs (acks_late past the broker's visibility timeout) then takes turns with it, and neither
    overwrites the other's results."""
    return Scan.objects.select_for_update().values_list("counts", flat=True).get(pk=scan.pk)


def _record(scan: Scan, counts: dict, key: str, result: dict) -> None:
    counts = counts | {key: result}
    Scan.objects.filter(pk=scan.pk).update(progress=len(counts), counts=counts)


def run_detector(detector: registry.Detector, *, scan: Scan, context: registry.Context) -> dict:
    """Apply what the detector sees now to its findings and record the run and its counts in the scan, in one
    transaction: a worker killed half way leaves the detector either done or untouched. Returns its counts; if
    another worker of the same scan already ran it, those counts, without running it again."""
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        counts = _locked_counts(scan)
        if "error" not in counts.get(detector.key, {"error": ""}):
            return counts[detector.key]
        # JIT off for this transaction, and a targeted run of the detector (which may write the same findings) waits.
        lock_detector(cursor, detector.key)
        previous = DetectorRun.objects.filter(detector=detector.key).values_list("ran_at", flat=True).first()
        changes = apply_subjects(cursor, detector, context, previous_run=previous)
        unresolved = Finding.objects.filter(detector=detector.key).unresolved().count()
        DetectorRun.objects.bulk_create(
            [DetectorRun(detector=detector.key, ran_at=context.now, scan=scan, unresolved=unresolved)],
            update_conflicts=True,
            unique_fields=["detector"],
            update_fields=["ran_at", "scan", "unresolved"],
        )
        result = changes.counts() | {"ms": round((time.perf_counter() - started) * 1000)}
        _record(scan, counts, detector.key, result)
    metrics.observe_detector(detector.key, time.perf_counter() - started)
    return result


def scan_create(*, requested_by=None, detectors: list[str] | None = None) -> Scan:
    unknown = set(detectors or []) - {d.key for d in registry.all_detectors()}
    if unknown:
        raise ValueError(f"Unknown detector(s): {', '.join(sorted(unknown))}")
    return Scan.objects.create(requested_by=requested_by, detectors=list(detectors or []))


def _claim(scan_id: int) -> Scan | None:
    """Mark the scan running. None if it already finished; ScanBusy if another scan runs."""
    now = timezone.now()
    Scan.objects.filter(status=Scan.Status.RUNNING, started_at__lt=now - STALE_AFTER).exclude(pk=scan_id).update(
        status=Scan.Status.FAILED, finished_at=now, error="Abandoned: its worker stopped before it finished."
    )
    scan = Scan.objects.get(pk=scan_id)
    if scan.status in (Scan.Status.DONE, Scan.Status.FAILED):
        return None
    if scan.status == Scan.Status.RUNNING:
        return scan  # redelivered after its worker died: go on from the detectors it committed
    try:
        with transaction.atomic():
            claimed = Scan.objects.filter(pk=scan_id, status=Scan.Status.QUEUED).update(
                status=Scan.Status.RUNNING, started_at=now
            )
    except IntegrityError:
        raise ScanBusy from None
    if not claimed:
        return None
    scan.refresh_from_db()
    return scan


def scan_run(scan_id: int) -> Scan | None:
    """Run a queued scan. Each detector commits on its own; one failing is recorded and the others still run."""
    scan = _claim(scan_id)
    if scan is None:
        return None
    detectors = [d for d in registry.all_detectors() if not scan.detectors or d.key in scan.detectors]
    context = registry.Context(now=timezone.now(), thresholds=registry.thresholds())
    # A redelivered scan goes on where its dead worker stopped: what a detector committed is in the counts, and
    # run_detector skips it.
    Scan.objects.filter(pk=scan.pk).update(total=len(detectors))
    for detector in detectors:
        started = time.perf_counter()
        try:
            run_detector(detector, scan=scan, context=context)
        except Exception as error:  # recorded per detector; the scan goes on
            logger.exception("detector %s failed in scan %s", detector.key, scan.pk)
            message = f"{type(error).__name__}: {error}"[:500]
            elapsed = round((time.perf_counter() - started) * 1000)
            with transaction.atomic():
                _record(scan, _locked_counts(scan), detector.key, {"error": message, "ms": elapsed})
    # What this scan opened is alerted as a targeted run's is (a first scan of an estate: one digest).
    alerts_queue(opened_at=context.now)
    counts = Scan.objects.values_list("counts", flat=True).get(pk=scan.pk)
    failed = [key for key, result in counts.items() if "error" in result]
    Scan.objects.filter(pk=scan.pk).update(
        status=Scan.Status.FAILED if failed and len(failed) == len(detectors) else Scan.Status.DONE,
        finished_at=timezone.now(),
        error=f"Detectors failed: {', '.join(failed)}" if failed else "",
    )
    scan.refresh_from_db()
    return scan
