"""Alerting (issue 18): a finding that opens at or above ALERT_MIN_SEVERITY reaches its owner and security by e-mail
and every webhook (a real HTTP receiver in a thread), signed when a secret is set; one alert per opening; a burst is a
digest; a failing receiver is retried and then shown as failed, to security only."""

import hashlib
import hmac
import json

import pytest
from django.core import mail
from django.utils import timezone

from inventory.detection import delivery
from inventory.detection.alerts import alerts_queue
from inventory.models import AlertDelivery, Finding
from tests.factories import IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

API_FIELDS = {"text", "finding", "detector", "severity", "status", "tool", "identity", "summary", "url", "observed_at",
              "opened_at"}  # fmt: skip


@pytest.fixture
def opening(owner, security):
    """Findings that opened together in one run, as a run leaves them; each call is another run."""
    tool = ToolFactory(owner=owner, slug="drafts")
    identity = IdentityFactory(owner=owner, name="svc-drafts")

    def make(count=1, severity="critical", detector="secret_exposed"):
        now = timezone.now()
        for n in range(count):
            Finding.objects.create(detector=detector, subject_type="tool", subject_id=tool.pk + 1000 * n, tool=tool,
                                   identity=identity, severity=severity, first_seen_at=now, recorded_last_seen_at=now,
                                   opened_at=now, observed_at=now)  # fmt: skip
        return now

    return make


def test_a_new_finding_reaches_the_webhook_and_the_people(opening, receiver, settings, celery_eager,
                                                          django_capture_on_commit_callbacks):  # fmt: skip
    settings.ALERT_WEBHOOK_SECRET = "whsec-test"
    with django_capture_on_commit_callbacks(execute=True):
        ids = alerts_queue(opened_at=opening())
    assert len(ids) == 3  # owner, security, one webhook
    assert len(receiver.requests) == 1
    request, body = receiver.requests[0], receiver.json()
    assert set(body) == API_FIELDS
    finding = Finding.objects.get()
    assert (body["finding"], body["detector"], body["severity"], body["status"]) == (finding.pk, "secret_exposed",
                                                                                    "critical", "open")  # fmt: skip
    assert (body["tool"], body["identity"]) == ("drafts", "svc-drafts")
    assert body["url"].endswith(f"/findings/{finding.pk}/") and body["url"] in body["text"]
    expected = "sha256=" + hmac.new(b"whsec-test", request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-NHI-Signature"] == expected
    assert request["headers"]["Content-Type"] == "application/json"
    assert sorted(m.to[0] for m in mail.outbox) == ["owner@example.test", "sec@example.test"]
    assert all(d.status == "delivered" and d.attempts == 1 for d in AlertDelivery.objects.all())
    finding.refresh_from_db()
    assert finding.alerted_at is not None and finding.alert_queued_for == finding.opened_at


def test_no_signature_without_a_secret(opening, receiver, celery_eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alerts_queue(opened_at=opening())
    assert "X-NHI-Signature" not in receiver.requests[0]["headers"]


def test_one_alert_per_opening(opening, receiver, celery_eager, django_capture_on_commit_callbacks):
    opened = opening()
    with django_capture_on_commit_callbacks(execute=True):
        alerts_queue(opened_at=opened)
        assert alerts_queue(opened_at=opened) == []
    assert len(receiver.requests) == 1
    # Resolved, then open again: a new opening, one new alert.
    reopened = timezone.now()
    Finding.objects.update(opened_at=reopened)
    with django_capture_on_commit_callbacks(execute=True):
        alerts_queue(opened_at=reopened)
    assert len(receiver.requests) == 2


def test_below_the_floor_nothing_is_sent(opening, receiver, settings, celery_eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_queue(opened_at=opening(severity="medium")) == []
    settings.ALERT_MIN_SEVERITY = "medium"
    medium = opening(severity="medium", detector="credential_stale")
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_queue(opened_at=medium)
    assert len(receiver.requests) == 1


def test_a_burst_is_one_digest_per_receiver(opening, receiver, settings, celery_eager,
                                            django_capture_on_commit_callbacks):  # fmt: skip
    settings.ALERT_DIGEST_AFTER = 5
    with django_capture_on_commit_callbacks(execute=True):
        alerts_queue(opened_at=opening(count=40))
    assert len(receiver.requests) == 1
    body = receiver.json()
    assert body["digest"] is True and body["count"] == 40 and "40 findings" in body["text"]
    assert len(body["findings"]) == 20 and set(body["findings"][0]) == API_FIELDS
    assert len(mail.outbox) == 2  # security's digest and the owner's
    assert Finding.objects.filter(alerted_at__isnull=False).count() == 40


def test_a_failing_webhook_is_retried_then_shown_failed(opening, failing_receiver, settings, celery_eager,
                                                        django_capture_on_commit_callbacks, api_as):  # fmt: skip
    settings.ALERT_MAX_ATTEMPTS = 3
    with django_capture_on_commit_callbacks(execute=True):
        alerts_queue(opened_at=opening())
    assert len(failing_receiver.requests) == 3
    hook = AlertDelivery.objects.get(channel="webhook")
    assert (hook.status, hook.attempts) == ("failed", 3)
    assert hook.last_error.startswith("HTTP 500 from http://127.0.0.1:")
    assert "SECRETPATH" not in hook.last_error + hook.target  # the URL's path is the webhook's secret
    listed = api_as("security").get("/api/v1/alerts/deliveries/?status=failed").json()
    assert [row["id"] for row in listed["results"]] == [hook.pk]
    assert listed["results"][0]["last_error"] == hook.last_error
    assert Finding.objects.get().alerted_at is not None  # the e-mails went out


def test_an_unreachable_webhook_fails_without_echoing_its_url(opening, settings, celery_eager,
                                                              django_capture_on_commit_callbacks):  # fmt: skip
    settings.ALERT_WEBHOOK_URLS = ["http://127.0.0.1:9/secret-token-path"]
    settings.ALERT_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks(execute=True):
        alerts_queue(opened_at=opening())
    hook = AlertDelivery.objects.get(channel="webhook")
    assert hook.status == "failed" and "secret-token-path" not in hook.last_error + hook.target + json.dumps(
        hook.payload
    )


def test_backoff_doubles(settings):
    settings.ALERT_RETRY_BACKOFF_SECONDS = 30
    assert [delivery.backoff_seconds(n) for n in range(4)] == [30, 60, 120, 240]
    assert delivery.backoff_seconds(20) == 3600


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", {401, 403}), ("owner", {403}), ("manager", {403}), ("gateway", {403}), ("security", {200})],
)
def test_who_sees_deliveries(api_as, role, status):
    assert api_as(role).get("/api/v1/alerts/deliveries/").status_code in status


def test_the_deliveries_list_has_a_fixed_query_count(api_as, opening, django_assert_max_num_queries):
    client = api_as("security")
    alerts_queue(opened_at=opening(count=3))
    with django_assert_max_num_queries(6):
        few = client.get("/api/v1/alerts/deliveries/")
    alerts_queue(opened_at=opening(count=5, detector="source_key_exposed"))
    with django_assert_max_num_queries(6):
        many = client.get("/api/v1/alerts/deliveries/")
    assert many.json()["count"] > few.json()["count"]


def test_bad_filters_are_400(api_as):
    assert api_as("security").get("/api/v1/alerts/deliveries/?status=nope").status_code == 400
