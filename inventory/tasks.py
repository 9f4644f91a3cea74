"""Celery entry points for inventory jobs. Thin: each calls one service and is safe to run twice."""

from celery import shared_task

from . import sealing, usage


@shared_task(acks_late=True)
def seal_audit_trail() -> int:
    return sealing.seal_all()


@shared_task(acks_late=True)
def roll_up_usage() -> int:
    return usage.usage_rollup()
