"""/healthz and /readyz from outside: status for anyone, details for security, the metrics token and allowed networks;
each readiness check fails on its own condition."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from inventory.audit.record import audit_record
from inventory.models import DetectorRun
from nhi_portal.celery import app
from tests.factories import ToolFactory

from .outside import Outside

CHECKS = {"database", "broker", "beat", "sealing_lag", "anchor", "last_scan", "siem_push_lag"}


@pytest.fixture
def outside(live_server):
    return Outside(live_server)


def test_liveness_answers_without_touching_the_database(client):
    # No database fixture: pytest-django's blocker raises on any query, so a 200 here means none was made.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_liveness_from_outside(outside):
    response = outside.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert outside.request("HEAD", "/healthz").status_code == 200


@pytest.mark.parametrize("role", ["anonymous", "owner", "other_owner", "manager", "gateway"])
def test_readiness_shows_only_the_status_to_everyone_else(outside, healthy, users, role):
    response = outside.get("/readyz", user=users[role])
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readiness_details_for_security_by_session(outside, healthy, security):
    response = outside.get("/readyz", user=security)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == CHECKS
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["sealing_lag"]["lag_seconds"] is None
    assert body["checks"]["beat"]["last_tick_age_seconds"] < 60


def test_readiness_details_for_a_security_api_token_not_a_gateway_one(outside, healthy, security, gateway, api_token):
    as_security = outside.get("/readyz", headers={"Authorization": f"Token {api_token(security)}"})
    assert set(as_security.json()["checks"]) == CHECKS
    as_gateway = outside.get("/readyz", headers={"Authorization": f"Token {api_token(gateway)}"})
    assert as_gateway.json() == {"status": "ready"}
    wrong = outside.get("/readyz", headers={"Authorization": "Token " + "0" * 64})
    assert wrong.status_code == 200
    assert wrong.json() == {"status": "ready"}


def test_readiness_details_for_the_metrics_token_only_when_it_matches(outside, healthy, metrics_token):
    right = outside.get("/readyz", headers={"Authorization": f"Bearer {metrics_token}"})
    assert set(right.json()["checks"]) == CHECKS
    wrong = outside.get("/readyz", headers={"Authorization": f"Bearer {metrics_token[:-1]}x"})
    assert wrong.json() == {"status": "ready"}


def test_readiness_details_for_an_allowed_network(outside, healthy, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert "checks" not in outside.get("/readyz").json()
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    assert set(outside.get("/readyz").json()["checks"]) == CHECKS


def _details(outside, security) -> tuple[int, dict]:
    response = outside.get("/readyz", user=security)
    return response.status_code, response.json()


def _failing(body: dict) -> set[str]:
    return {name for name, check in body["checks"].items() if not check["ok"]}


def test_beat_never_ran_or_stale_is_not_ready(outside, healthy, security, settings):
    PeriodicTask.objects.update(last_run_at=timezone.now() - timedelta(minutes=11))
    status, body = _details(outside, security)
    assert status == 503
    assert body["status"] == "not ready"
    assert _failing(body) == {"beat"}
    assert "limit 600 s" in body["checks"]["beat"]["detail"]
    assert outside.get("/readyz").json() == {"status": "not ready"}
    settings.READINESS_BEAT_MAX_AGE_SECONDS = 0  # turned off
    assert _details(outside, security)[0] == 200
    settings.READINESS_BEAT_MAX_AGE_SECONDS = 600
    PeriodicTask.objects.update(last_run_at=None)
    status, body = _details(outside, security)
    assert (status, body["checks"]["beat"]["detail"]) == (503, "beat has never run a periodic task")


def test_an_old_or_missing_scan_is_not_ready(outside, healthy, security, settings):
    DetectorRun.objects.update(ran_at=timezone.now() - timedelta(hours=27))
    status, body = _details(outside, security)
    assert (status, _failing(body)) == (503, {"last_scan"})
    settings.READINESS_SCAN_MAX_AGE_HOURS = 28
    assert _details(outside, security)[0] == 200
    DetectorRun.objects.all().delete()
    status, body = _details(outside, security)
    assert body["checks"]["last_scan"]["detail"] == "no detection scan has run yet"


def test_sealing_lag_past_the_bound_is_not_ready(outside, healthy, security, settings):
    tool = ToolFactory()
    with time_machine.travel(timezone.now() - timedelta(minutes=10)):
        audit_record(actor=None, action="tool.created", obj=tool)
    status, body = _details(outside, security)
    assert (status, _failing(body)) == (503, {"sealing_lag"})
    assert body["checks"]["sealing_lag"]["lag_seconds"] >= 600
    assert body["checks"]["sealing_lag"]["max_lag_seconds"] == 150  # the bound verify uses: 30 s + 2 x 60 s
    settings.READINESS_SEALING_LAG_MAX_SECONDS = 3600
    assert _details(outside, security)[0] == 200


def test_an_anchor_that_cannot_be_appended_to_is_not_ready(outside, healthy, security, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.AUDIT_ANCHOR_PATH = str(blocker / "anchor.jsonl")
    status, body = _details(outside, security)
    assert (status, _failing(body)) == (503, {"anchor"})
    settings.AUDIT_ANCHOR_PATH = "s3://bucket/anchor"  # no such store: not configured, and the URL is not echoed
    status, body = _details(outside, security)
    assert body["checks"]["anchor"]["detail"] == "the audit anchor is not configured"


def test_an_unreachable_broker_is_not_ready_and_its_url_is_not_shown(outside, healthy, security, settings):
    before = app.conf.broker_url, app.conf.broker_write_url
    # Port 9 (discard): nothing listens.
    app.conf.broker_url = app.conf.broker_write_url = "redis://:broker-password-4f1e@127.0.0.1:9/0"
    try:
        status, body = _details(outside, security)
    finally:
        app.conf.broker_url, app.conf.broker_write_url = before
    assert (status, _failing(body)) == (503, {"broker"})
    assert body["checks"]["broker"]["detail"].startswith("broker unreachable")
    assert "broker-password" not in str(body) and "127.0.0.1" not in str(body)
