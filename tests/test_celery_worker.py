"""A real Celery worker on Redis runs the scheduled jobs (CI runs this; locally it skips without Redis)."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from approvals import tasks
from nhi_portal.celery import app
from tests.factories import GrantFactory


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_expires_due_grants_through_redis():
    grant = GrantFactory(expires_at=timezone.now() - timedelta(minutes=1))
    assert app.conf.broker_url.startswith("redis://")
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        tasks.expire_due_grants.delay()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            grant.refresh_from_db()
            if grant.status == "expired":
                break
            time.sleep(0.2)
    assert grant.status == "expired"


def test_beat_schedule_names_real_tasks():
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
