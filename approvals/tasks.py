"""Celery entry points for the approvals jobs and mail. Thin: each calls one service or one notification."""

from smtplib import SMTPException

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone
from knox.models import AuthToken

from . import notifications, services

# A mail server that is down, refuses or hangs (EMAIL_TIMEOUT per SMTP step, then the soft limit) is retried with
# jittered exponential backoff, up to about 25 minutes in all; SMTPException is an OSError, named for the reader.
# Delivery is at least once: a worker lost between the send and the ack sends again (acks_late), which is better
# than a decision nobody hears about.
MAIL_TASK = {
    "acks_late": True,
    "autoretry_for": (SMTPException, OSError, SoftTimeLimitExceeded),
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 6,
    "soft_time_limit": 60,
    "time_limit": 90,
}


@shared_task(acks_late=True)
def expire_due_grants() -> int:
    return services.grants_expire_due()


@shared_task(acks_late=True)
def expire_stale_requests() -> int:
    return services.requests_expire_stale()


@shared_task(acks_late=True)
def remind_expiring_grants() -> int:
    return services.grants_remind_expiring()


@shared_task(acks_late=True)
def delete_expired_tokens() -> int:
    """Expired API tokens never authenticate (nhi_portal.authentication); this only keeps the table small."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


@shared_task(**MAIL_TASK)
def notify_request_filed(request_id: int) -> int:
    return notifications.request_filed(request_id=request_id)


@shared_task(**MAIL_TASK)
def notify_request_decided(decision_id: int, *, status: str, approvals: int, required_approvals: int) -> int:
    return notifications.request_decided(
        decision_id=decision_id, status=status, approvals=approvals, required_approvals=required_approvals
    )


@shared_task(**MAIL_TASK)
def notify_grants_expiring(owner_id: int, grant_ids: list[int]) -> int:
    """Idempotent: only grants still due and not yet reminded are mailed and then marked."""
    return notifications.grants_expiring(owner_id=owner_id, grant_ids=grant_ids)
