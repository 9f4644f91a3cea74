"""The loop of issue 18 with every part real: an owner pastes a secret into a prompt template through the API; a
Celery worker on Redis runs the targeted detection the write queued (no scan), the finding opens and its webhook
reaches a local HTTP receiver; containing it through the API makes the very next authorize `credential_compromised`."""

import time

import pytest
from celery.contrib.testing.worker import start_worker

from inventory.models import Finding, Scan
from nhi_portal.celery import app
from tests.approvals.authorize_helpers import ask

LEAKED = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"


@pytest.mark.redis
@pytest.mark.postgres  # a worker thread and the test share the database; in-memory SQLite locks
@pytest.mark.django_db(transaction=True)
def test_a_pasted_secret_is_alerted_and_contained_without_a_scan(api_as, world, receiver, settings):
    settings.DETECTION_DEBOUNCE_SECONDS = 1
    tool = world["tool"]
    assert ask(api_as("gateway"))["reason"] == "allowed"
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        pasted = time.monotonic()
        response = api_as("owner").patch(
            f"/api/v1/tools/{tool.pk}/", {"prompt_templates": f"Deploy with key {LEAKED}."}, format="json"
        )
        assert response.status_code == 200, response.content
        assert receiver.arrived.wait(timeout=30), "no webhook delivery reached the receiver"
        elapsed = time.monotonic() - pasted
    body = receiver.json()
    finding = Finding.objects.get(detector="secret_in_prompt", subject_type="tool", subject_id=tool.pk)
    assert (body["finding"], body["tool"], body["severity"]) == (finding.pk, tool.slug, "critical")
    assert LEAKED not in receiver.requests[0]["body"].decode()
    assert not Scan.objects.exists()
    assert elapsed < 30
    finding.refresh_from_db()
    assert finding.observed_at <= finding.opened_at <= finding.alerted_at

    contained = api_as("owner").post(f"/api/v1/findings/{finding.pk}/contain/", {"reason": "Pasted in a prompt."},
                                     format="json")  # fmt: skip
    assert contained.status_code == 200 and contained.json()["contained"] is True
    answer = ask(api_as("gateway"))
    assert (answer["decision"], answer["reason"]) == ("deny", "credential_compromised")
    finding.refresh_from_db()
    assert finding.contained_at >= finding.alerted_at
