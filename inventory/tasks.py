"""Celery entry points for inventory jobs. Thin: each calls one service and is safe to run twice."""

from celery import shared_task
from django.conf import settings

from inventory.audit import retention, sealing, siem
from inventory.audit import runs as verification
from inventory.posture import evaluate as posture
from inventory.usage import ingest as usage

from .detection import delivery, provider_disable, targeted
from .detection import scan as detection


@shared_task(acks_late=True)
def seal_audit_trail() -> int:
    return sealing.seal_all()


@shared_task(acks_late=True)
def verify_audit_trail(run_id: int) -> dict:
    """Run a queued verification (inventory/audit/runs.py); a run already taken or done is skipped."""
    run = verification.verification_run(run_id)
    return {"run": run_id, "ok": run.ok if run else None}


# A full run re-hashes the whole history (about 12 s per 200,000 rows): far past the default task limits.
@shared_task(acks_late=True, time_limit=12 * 3600, soft_time_limit=12 * 3600 - 60)
def verify_audit_full(run_id: int | None = None) -> dict:
    """The scheduled full verification (and the one security queues): from the chain's start, with progress."""
    if run_id is None:
        run, new = verification.verification_queue(kind="full", requested_by="schedule")
        if not new:
            return {"run": run.pk, "skipped": True}
        run_id = run.pk
    return verify_audit_trail(run_id)


@shared_task(acks_late=True)
def verify_audit_incremental() -> dict:
    """Every few minutes: verify what was sealed since the checkpoints."""
    run, new = verification.verification_queue(kind="incremental", requested_by="schedule")
    if not new:
        return {"run": run.pk, "skipped": True}
    return verify_audit_trail(run.pk)


@shared_task(acks_late=True, autoretry_for=(siem.SinkError,), retry_backoff=5, retry_backoff_max=600, max_retries=8)
def push_siem_export() -> dict:
    """Deliver the export stream to the configured SIEM sink (SIEM_PUSH_URL); a sink error retries with backoff."""
    return siem.push_pending()


# Writing a month of a busy gateway's events (tens of millions of rows) takes far longer than the default limits.
@shared_task(acks_late=True, time_limit=12 * 3600, soft_time_limit=12 * 3600 - 60)
def archive_audit_months() -> list[int]:
    """Daily: archive, with its batches and anchor records, each closed month not archived yet (retention)."""
    made = retention.archive_closed_months(older_than_months=settings.AUDIT_ARCHIVE_AFTER_MONTHS)
    return [archive.pk for archive in made]


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


@shared_task(acks_late=True)
def run_targeted_detection() -> dict:
    """Drain the changes writes queued (inventory.changes): the affected detectors on the changed subjects only."""
    return targeted.targeted_run()


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_alert(self, delivery_id: int) -> str:
    """Send one alert delivery; retry with exponential backoff until it is delivered or out of attempts."""
    outcome = delivery.delivery_attempt(delivery_id)
    if outcome == delivery.RETRY:
        raise self.retry(
            countdown=delivery.backoff_seconds(self.request.retries), max_retries=settings.ALERT_MAX_ATTEMPTS
        )
    return outcome


@shared_task(acks_late=True)
def disable_at_provider(credential_ids: list[int], actor_label: str) -> list[str]:
    """After a containment commits: disable its credentials at their providers (a dry run unless configured)."""
    outcomes = provider_disable.provider_disable(credential_ids=credential_ids, actor_label=actor_label)
    return [outcome.outcome for outcome in outcomes]


@shared_task(acks_late=True)
def pull_discovery_sources() -> list[str]:
    """Beat: queue one pull per account in SOURCE_PULLS (none configured: nothing), so each provider fails alone."""
    from inventory.imports.sources.pulls import pull_configs

    names = sorted(pull_configs())
    for name in names:
        pull_discovery_source.delay(name)
    return names


# Generating a large account's credential report and importing it can take minutes.
@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3540)
def pull_discovery_source(name: str) -> dict:
    """Fetch one configured account's list from its provider and import it as a file import would be."""
    from inventory.imports.sources.pulls import source_pull

    return source_pull(name=name).as_dict()
