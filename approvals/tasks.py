"""Celery entry points for the approvals jobs. Thin and idempotent: each calls one service."""

from celery import shared_task
from django.utils import timezone
from knox.models import AuthToken

from . import services


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
