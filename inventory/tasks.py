"""Celery entry points for inventory jobs. Thin: each calls one service and is safe to run twice."""

from celery import shared_task

from inventory.audit import sealing
from inventory.posture import evaluate as posture
from inventory.usage import ingest as usage

from .detection import scan as detection


@shared_task(acks_late=True)
def seal_audit_trail() -> int:
    return sealing.seal_all()


@shared_task(acks_late=True)
def roll_up_usage() -> int:
    return usage.usage_rollup()


@shared_task(bind=True, acks_late=True, max_retries=20, default_retry_delay=30)
def run_scan(self, scan_id: int) -> dict:
    """Run a queued scan; if another scan is running, wait and try again rather than run two at once."""
    try:
        scan = detection.scan_run(scan_id)
    except detection.ScanBusy as busy:
        raise self.retry(exc=busy) from busy
    if scan is not None:
        take_posture_snapshot.delay()
    return {"scan": scan_id, "status": scan.status if scan else "skipped"}


@shared_task(acks_late=True)
def scheduled_scan() -> int:
    """The daily full scan (django-celery-beat schedule, editable in the admin)."""
    scan = detection.scan_create()
    run_scan.delay(scan.pk)
    return scan.pk


@shared_task(acks_late=True)
def take_posture_snapshot() -> dict:
    """Today's posture per tool and control, for the compliance trends; rewriting today's rows is harmless."""
    return posture.snapshot()
