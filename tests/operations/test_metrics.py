"""/metrics from outside: who may scrape, and what the exposition holds (HTTP, decisions, scans, imports and the
gauges read from the database); several gunicorn workers add up in multiprocess mode."""

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from inventory.detection import registry
from inventory.detection.scan import run_detector, scan_create
from inventory.models import Finding
from nhi_portal import metrics
from tests.factories import IdentityFactory

from .outside import Outside

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def outside(live_server):
    return Outside(live_server)


def samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("owner", 403), ("other_owner", 403), ("manager", 403), ("gateway", 403), ("security", 200)],
)
def test_who_may_scrape_by_session(outside, users, metrics_token, role, status):
    response = outside.get("/metrics", user=users[role])
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    if status == 200:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_api_tokens_security_yes_gateway_no(outside, security, gateway, api_token):
    assert outside.get("/metrics", headers={"Authorization": f"Token {api_token(security)}"}).status_code == 200
    assert outside.get("/metrics", headers={"Authorization": f"Token {api_token(gateway)}"}).status_code == 403
    assert outside.get("/metrics", headers={"Authorization": "Token " + "a" * 64}).status_code == 401


def test_the_metrics_token_compared_whole(outside, metrics_token, settings):
    assert outside.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"}).status_code == 200
    for wrong in (metrics_token[:-1], metrics_token + "0", "", metrics_token.upper()):
        assert outside.get("/metrics", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    settings.METRICS_TOKEN = ""  # no token configured: no bearer is ever right
    assert outside.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_wrong_metrics_tokens_are_throttled_like_api_tokens(outside, metrics_token, settings):
    from nhi_portal.throttles import token_failures

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token_failure": "3/min"}}
    token_failures.reset()
    try:
        answers = [outside.get("/metrics", headers={"Authorization": "Bearer guess"}).status_code for _ in range(5)]
        assert answers == [401, 401, 401, 429, 429]
        # Blocked even with the right token until the window ends: guessing costs the guesser.
        assert outside.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"}).status_code == 429
    finally:
        token_failures.reset()


def test_allowed_networks(outside, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    assert outside.get("/metrics").status_code == 401
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]
    assert outside.get("/metrics").status_code == 200


def test_exposition_holds_http_domain_and_database_metrics(outside, metrics_token, transactional_db):
    auth = {"Authorization": f"Bearer {metrics_token}"}
    before = samples(outside.get("/metrics", headers=auth).text)
    for _ in range(3):
        outside.get("/healthz")
    outside.get("/api/v1/tools/")  # 401: counted under its route pattern
    metrics.observe_decision("deny", "no_grant", 0.0012)
    metrics.observe_import("aws-credential-report", "ok")
    IdentityFactory(interactive_use_seen=True)
    scan = scan_create()
    context = registry.Context(now=timezone.now(), thresholds=registry.thresholds())
    run_detector(registry.get("identity_human_use"), scan=scan, context=context)
    Finding.objects.update(status="open")

    after = samples(outside.get("/metrics", headers=auth).text)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("nhi_http_requests_total", method="GET", route="healthz", status="200") == 3
    assert grew("nhi_http_requests_total", method="GET", route="api/v1/tools/", status="401") == 1
    assert grew("nhi_http_request_duration_seconds_count", method="GET", route="healthz") == 3
    assert grew("nhi_authorize_decisions_total", decision="deny", reason="no_grant") == 1
    assert grew("nhi_authorize_decision_duration_seconds_bucket", decision="deny", le="0.002") == 1
    assert grew("nhi_import_runs_total", kind="aws-credential-report", outcome="ok") == 1
    assert grew("nhi_scan_detector_duration_seconds_count", detector="identity_human_use") == 1
    severity = registry.get("identity_human_use").severity
    assert after[("nhi_findings_open", (("severity", severity),))] == 1
    assert after[("nhi_database_collector_up", ())] == 1
    assert after[("nhi_audit_sealing_lag_seconds", ())] >= 0
    assert after[("nhi_audit_sealing_lag_bound_seconds", ())] == 150
    assert 0 <= after[("nhi_last_scan_age_seconds", ())] < 60
    # No raw path, id or query string ever becomes a label: cardinality stays bounded.
    assert not [key for key in after if any("?" in value for _, value in key[1])]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_several_gunicorn_workers_add_up_in_multiprocess_mode(tmp_path):
    """Two worker processes answer; the scrape, whichever worker answers it, counts every request. The database is
    an empty file here: the database-derived gauges say so (collector down) and the scrape still answers."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = _free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "nhi_portal.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "METRICS_TOKEN": "multiprocess-metrics-token-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": "memory://",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "nhi_portal.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
         "-c", "python:operations.gunicorn"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/healthz", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        # Several at a time, so that both workers take some (one after another, one worker may answer them all).
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            session_less = list(pool.map(lambda _: requests.get(base + "/healthz", timeout=10), range(40)))
        assert {r.status_code for r in session_less} == {200}
        auth = {"Authorization": "Bearer multiprocess-metrics-token-0123456789"}
        scraped = samples(requests.get(base + "/metrics", headers=auth, timeout=10).text)
        assert scraped[("nhi_http_requests_total", (("method", "GET"), ("route", "healthz"), ("status", "200")))] == 41
        assert scraped[("nhi_database_collector_up", ())] == 0
        # /readyz is an async view under gunicorn's sync workers: the database has no tables, so not ready.
        ready = requests.get(base + "/readyz", headers=auth, timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["ok"] is True
        assert ready.json()["checks"]["beat"]["detail"] == "unknown error"  # its query failed; the library hides why
        assert len(list(multiproc.glob("counter_*.db"))) == 2, "both workers answered and wrote their own file"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
