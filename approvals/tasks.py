"""Celery entry points for the approvals jobs. Thin and idempotent: each calls one service."""

from celery import shared_task

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
