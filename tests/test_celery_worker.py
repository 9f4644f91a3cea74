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
@pytest.mark.postgres  # a worker thread and the test share the database; in-memory SQLite locks
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


@pytest.mark.redis
@pytest.mark.postgres  # a worker thread and the test share the database; in-memory SQLite locks
@pytest.mark.django_db(transaction=True)
def test_scan_queued_through_the_api_completes_on_a_worker(api_as):
    from inventory.models import Finding, Scan
    from tests.factories import IdentityFactory

    IdentityFactory(interactive_use_seen=True, third_party=True)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        response = api_as("security").post("/api/v1/scans/", {}, format="json")
        assert response.status_code == 202
        scan_id = response.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Scan.objects.get(pk=scan_id).status in ("queued", "running"):
            time.sleep(0.3)
    scan = Scan.objects.get(pk=scan_id)
    assert scan.status == "done", scan.error
    assert scan.progress == scan.total > 10
    assert Finding.objects.filter(detector="identity_human_use").count() == 1
    assert Finding.objects.filter(detector="third_party_unreviewed").count() == 1


@pytest.mark.redis
@pytest.mark.postgres  # a worker thread and the test share the database; in-memory SQLite locks
@pytest.mark.django_db(transaction=True)
def test_a_killed_scan_rerun_leaves_no_duplicates():
    """A worker dies mid-scan (the scan stays "running"); the redelivered task goes on from where it stopped."""
    from django.utils import timezone

    from inventory.detection import registry
    from inventory.detection.scan import run_detector, scan_create
    from inventory.models import Finding, Scan
    from tests.factories import IdentityFactory

    IdentityFactory.create_batch(3, interactive_use_seen=True)
    scan = scan_create()
    Scan.objects.filter(pk=scan.pk).update(status="running", started_at=timezone.now())
    context = registry.Context(now=timezone.now(), thresholds=registry.thresholds())
    run_detector(registry.get("identity_human_use"), scan=scan, context=context)  # got this far, then died
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        from inventory import tasks as inventory_tasks

        inventory_tasks.run_scan.delay(scan.pk)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Scan.objects.get(pk=scan.pk).status == "running":
            time.sleep(0.3)
    scan = Scan.objects.get(pk=scan.pk)
    assert scan.status == "done"
    assert Finding.objects.filter(detector="identity_human_use").count() == 3
    # The detector committed before the kill keeps its counts; the rerun did not run it twice.
    assert scan.counts["identity_human_use"]["opened"] == 3
