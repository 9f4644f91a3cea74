"""Running detectors: each detector's subjects are upserted into findings and the ones it no longer sees are
resolved, all in SQL (INSERT ... SELECT ... ON CONFLICT, then one UPDATE), one transaction per detector.

A scan is idempotent: re-running it, or running it after a worker died half way, converges on the same findings,
because a finding is unique per (detector, subject). The database allows one running scan at a time.
"""

import logging
import time
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from inventory.models import Finding, FindingStatus, Scan

from . import registry

logger = logging.getLogger(__name__)

# A scan still "running" after this long belongs to a worker that died; it no longer blocks new scans.
STALE_AFTER = timedelta(minutes=30)


class ScanBusy(Exception):
    """Another scan is running."""


def _subjects_sql(detector: registry.Detector, context: registry.Context) -> tuple[str, list]:
    parts, params = [], []
    for queryset in detector.querysets(context):
        sql, qparams = queryset.query.sql_with_params()
        parts.append(f"SELECT s_type, s_id, s_tool, s_identity FROM ({sql}) AS part")
        params.extend(qparams)
    # One row per subject, even if a detector's joins produce several.
    union = " UNION ALL ".join(parts)
    sql = (
        "SELECT s_type, s_id, MIN(s_tool) AS s_tool, MIN(s_identity) AS s_identity "
        f"FROM ({union}) AS found GROUP BY s_type, s_id"
    )
    return sql, params


def _upsert_sql(table: str, subjects_sql: str) -> str:
    reopen = f"{table}.status = 'resolved' OR ({table}.status = 'suppressed' AND {table}.suppressed_until <= %s)"
    return f"""
        INSERT INTO {table} (detector, subject_type, subject_id, tool_id, identity_id, severity, status,
                             first_seen_at, last_seen_at, resolved_at, opened_scan_id, last_seen_scan_id,
                             acknowledged_at, suppressed_until, suppress_reason)
        SELECT %s, s_type, s_id, s_tool, s_identity, %s, 'open', %s, %s, NULL, %s, %s, NULL, NULL, ''
        FROM ({subjects_sql}) AS subjects WHERE true
        ON CONFLICT (detector, subject_type, subject_id) DO UPDATE SET
            last_seen_at = excluded.last_seen_at,
            last_seen_scan_id = excluded.last_seen_scan_id,
            tool_id = excluded.tool_id,
            identity_id = excluded.identity_id,
            severity = excluded.severity,
            opened_scan_id = CASE WHEN {reopen} THEN excluded.opened_scan_id ELSE {table}.opened_scan_id END,
            resolved_at = CASE WHEN {reopen} THEN NULL ELSE {table}.resolved_at END,
            acknowledged_at = CASE WHEN {reopen} THEN NULL ELSE {table}.acknowledged_at END,
            acknowledged_by_id = CASE WHEN {reopen} THEN NULL ELSE {table}.acknowledged_by_id END,
            suppressed_until = CASE WHEN {reopen} THEN NULL ELSE {table}.suppressed_until END,
            suppress_reason = CASE WHEN {reopen} THEN '' ELSE {table}.suppress_reason END,
            status = CASE WHEN {reopen} THEN 'open' ELSE {table}.status END
    """


def run_detector(detector: registry.Detector, *, scan: Scan, context: registry.Context) -> dict:
    """Upsert what the detector sees now and resolve what it no longer sees. Returns the counts."""
    table = connection.ops.quote_name(Finding._meta.db_table)
    subjects_sql, params = _subjects_sql(detector, context)
    now = context.now
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A million-row estate makes every statement here look expensive enough for JIT compilation, which then
            # costs up to seconds per detector and saves nothing on these plans (bench/scan.py). This transaction only.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            _upsert_sql(table, subjects_sql),
            [detector.key, detector.severity, now, now, scan.pk, scan.pk, *params, *[now] * 7],
        )
        resolved = (
            Finding.objects.filter(detector=detector.key)
            .exclude(status=FindingStatus.RESOLVED)
            .exclude(last_seen_scan=scan)
            .update(status=FindingStatus.RESOLVED, resolved_at=now)
        )
    # One pass for both counts.
    seen = Finding.objects.filter(detector=detector.key, last_seen_scan=scan).aggregate(
        total=Count("pk"), opened=Count("pk", filter=Q(opened_scan=scan))
    )
    return {"opened": seen["opened"], "still_open": seen["total"] - seen["opened"], "resolved": resolved}


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
        return scan  # redelivered after its worker died: run again, the upserts make that harmless
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
    counts: dict[str, dict] = {}
    Scan.objects.filter(pk=scan.pk).update(total=len(detectors), progress=0)
    for index, detector in enumerate(detectors, start=1):
        started = time.perf_counter()
        try:
            result = run_detector(detector, scan=scan, context=context)
        except Exception as error:  # recorded per detector; the scan goes on
            logger.exception("detector %s failed in scan %s", detector.key, scan.pk)
            result = {"error": f"{type(error).__name__}: {error}"[:500]}
        result["ms"] = round((time.perf_counter() - started) * 1000)
        counts[detector.key] = result
        Scan.objects.filter(pk=scan.pk).update(progress=index, counts=counts)
    failed = [key for key, result in counts.items() if "error" in result]
    Scan.objects.filter(pk=scan.pk).update(
        status=Scan.Status.FAILED if failed and len(failed) == len(detectors) else Scan.Status.DONE,
        finished_at=timezone.now(),
        error=f"Detectors failed: {', '.join(failed)}" if failed else "",
    )
    scan.refresh_from_db()
    return scan
