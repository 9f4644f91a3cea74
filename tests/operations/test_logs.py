"""Structured logs from outside: a request id on every line and in the response, the user and the route on the
request line, a correlation id carried into Celery tasks, and no secret or token in any line whatever the input."""

import base64
import logging
import re
import time

import pytest
import requests
import structlog
from celery.contrib.testing.worker import start_worker
from django.test import Client
from rest_framework.test import APIClient

from nhi_portal.celery import app
from tests.factories import IdentityFactory, ToolFactory

from .outside import Outside

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def outside(live_server):
    return Outside(live_server)


def test_request_line_names_id_user_route_status(outside, json_logs, owner):
    response = outside.get("/tools/", user=owner, headers={"X-Request-ID": "lb-7d2c9e41-aaaa"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "lb-7d2c9e41-aaaa"
    [line] = [line for line in json_logs.requests() if line["request_id"] == "lb-7d2c9e41-aaaa"]
    assert line["user"] == "owner"
    assert line["route"] == "tools/"
    assert line["method"] == "GET"
    assert line["status_code"] == 200
    assert line["duration_ms"] > 0
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "incoming", ["short", "x" * 65, "has space-1234567", 'quo"te-1234567', "semi;colon-1234567", "ünïcode-1234567"]
)
def test_a_malformed_request_id_is_replaced(outside, json_logs, incoming):
    response = outside.get("/healthz", headers={"X-Request-ID": incoming.encode()})
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])
    assert incoming not in json_logs.text


def test_django_request_warnings_carry_the_request_id_and_user(outside, json_logs, owner, other_owner):
    tool = ToolFactory(owner=other_owner)
    response = outside.get(f"/tools/{tool.pk}/", user=owner)
    assert response.status_code == 404
    request_id = response.headers["X-Request-ID"]
    [warning] = [line for line in json_logs.lines() if line["logger"] == "django.request"]
    assert warning["request_id"] == request_id
    assert warning["user"] == "owner"
    assert warning["status_code"] == 404
    assert "exception" not in warning  # nhi_portal.logging_filters still drops an expected 4xx's traceback


def test_a_task_run_eagerly_hands_the_request_its_context_back(
    json_logs, security, celery_eager, django_capture_on_commit_callbacks
):
    from inventory.models import Scan

    client = APIClient()
    client.force_authenticate(security)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/scans/", {}, format="json", headers={"X-Request-ID": "eager-scan-0001"})
    assert response.status_code == 202
    assert Scan.objects.get().status == "done"  # the task ran, inside the request
    [request_line] = [line for line in json_logs.requests() if line["request_id"] == "eager-scan-0001"]
    assert "task" not in request_line and "correlation_id" not in request_line
    assert request_line["user"] == "sec"


@pytest.mark.redis
@pytest.mark.postgres  # a worker thread and the test share the database
@pytest.mark.django_db(transaction=True)
def test_a_worker_logs_the_correlation_id_of_the_request_through_redis(json_logs, security):
    from inventory.models import Scan

    client = APIClient()
    client.force_authenticate(security)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        # The worker's start configures logging again from settings.LOGGING, as a real worker does; capture after it.
        json_logs.attach()
        response = client.post("/api/v1/scans/", {}, format="json", headers={"X-Request-ID": "req-scan-corr-42"})
        assert response.status_code == 202
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tasks = {line.get("task") for line in json_logs.lines() if line.get("correlation_id") == "req-scan-corr-42"}
            if {"inventory.tasks.run_scan", "inventory.tasks.take_posture_snapshot"} <= tasks:
                break
            time.sleep(0.3)
    assert Scan.objects.get(pk=response.json()["id"]).status == "done"
    # The scan's task and the snapshot task it queued both log under the request's id.
    assert {"inventory.tasks.run_scan", "inventory.tasks.take_posture_snapshot"} <= tasks


# Secrets ------------------------------------------------------------------------------------------------------------

SECRETS = {
    "api_token_header": None,  # a real, valid API token: filled in by the test
    "bad_api_token": "f" * 64,
    "metrics_bearer": "metrics-bearer-planted-9c1d2e3f4a5b",
    "basic_auth": "basic-auth-planted-5e6f7a8b9c",
    "api_key_header": "x-api-key-planted-1a2b3c4d5e6f",
    "cookie": "cookie-planted-0a9b8c7d6e5f",
    "query_search": "query-planted-7f6e5d4c3b2a",
    "query_token": "query-token-planted-2b3c4d5e6f7a",
    "json_secret": "sk-json-planted-3c4d5e6f7a8b9c0d",
    "json_bad_secret": "sk-json-invalid-planted-4d5e6f7a8b9c",
    "form_secret": "sk-form-planted-5e6f7a8b9c0d1e2f",
    "login_password": "login-password-planted-6f7a8b9c0d",
    "oidc_code": "oidc-code-planted-7a8b9c0d1e2f",
}


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=20)
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def test_no_secret_or_token_reaches_the_logs_whatever_the_input(outside, json_logs, owner, api_token, metrics_token):
    secrets = SECRETS | {"api_token_header": api_token(owner)}
    identity = IdentityFactory(owner=owner)
    base = outside.base
    answers = []

    def call(method, path, **kwargs):
        response = requests.request(method, base + path, timeout=20, **kwargs)
        answers.append(response)
        return response

    # Headers: a valid API token, a wrong one, a wrong metrics bearer, basic auth, an API key, a cookie.
    token = {"Authorization": f"Token {secrets['api_token_header']}"}
    assert call("GET", "/api/v1/tools/", headers=token).status_code == 200
    assert (
        call("GET", "/api/v1/tools/", headers={"Authorization": f"Token {secrets['bad_api_token']}"}).status_code == 401
    )
    assert call("GET", "/metrics", headers={"Authorization": f"Bearer {secrets['metrics_bearer']}"}).status_code == 401
    basic = base64.b64encode(f"owner:{secrets['basic_auth']}".encode()).decode()
    call("GET", "/api/v1/tools/", headers={"Authorization": f"Basic {basic}"})
    call("GET", "/api/v1/tools/", headers={"X-Api-Key": secrets["api_key_header"], **token})
    call("GET", "/tools/", cookies={"sessionid": secrets["cookie"], "remember": secrets["cookie"]})
    # Query strings, on a page, the API and the metrics.
    call("GET", f"/api/v1/tools/?search={secrets['query_search']}&token={secrets['query_token']}", headers=token)
    call("GET", f"/metrics?access_token={secrets['query_token']}")
    call("GET", f"/accounts/login/?next=/&code={secrets['oidc_code']}&state=x")
    # JSON bodies: a credential's secret accepted, and refused with a 400.
    created = call(
        "POST",
        "/api/v1/credentials/",
        json={"identity": identity.pk, "kind": "api_key", "secret": secrets["json_secret"]},
        headers=token,
    )
    assert created.status_code == 201, created.text
    refused = call(
        "POST", "/api/v1/credentials/", json={"kind": "nope", "secret": secrets["json_bad_secret"]}, headers=token
    )
    assert refused.status_code == 400
    # Form posts: the credential form of a signed-in owner, and a failed sign-in (django-axes logs those).
    browser = requests.Session()
    client = Client()
    client.force_login(owner)
    browser.cookies.set("sessionid", client.cookies["sessionid"].value)
    form_url = f"{base}/identities/{identity.pk}/credentials/"
    form = {"kind": "api_key", "storage": "vault", "secret": secrets["form_secret"]}
    form["csrfmiddlewaretoken"] = _csrf(browser, f"{base}/identities/{identity.pk}/")
    posted = browser.post(form_url, data=form, headers={"Referer": form_url}, timeout=20)
    assert posted.status_code in (200, 302)
    visitor = requests.Session()
    login_url = f"{base}/accounts/login/"
    form = {
        "username": "owner",
        "password": secrets["login_password"],
        "csrfmiddlewaretoken": _csrf(visitor, login_url),
    }
    failed = visitor.post(login_url, data=form, headers={"Referer": login_url}, timeout=20)
    assert failed.status_code == 200 and "Sign in" in failed.text

    text = json_logs.text
    leaked = {name for name, secret in secrets.items() if secret in text}
    assert leaked == set(), f"secrets in the logs: {leaked}"
    # The capture saw these requests (so the search above searched something): every answer's id is logged.
    logged_ids = {line["request_id"] for line in json_logs.requests()}
    assert {answer.headers["X-Request-ID"] for answer in answers} <= logged_ids
    assert any(
        "login failed" in line["event"].lower() for line in json_logs.lines() if line["logger"].startswith("axes")
    )


def test_a_careless_log_call_still_has_its_secrets_masked(json_logs):
    """The second line of defence: a future log call that passes a secret along."""
    careless = logging.getLogger("inventory.something_new")
    careless.warning("retrying https://idp.example.test/token?code=abc123&client_secret=s3cr3t-planted-value")
    careless.warning("upstream said: Authorization: Bearer %s", "b" * 40)
    structlog.get_logger("inventory.other").info(
        "called", password="pw-planted-1", api_key="ak-planted-2", token_count=3
    )
    text = json_logs.text
    for planted in ("abc123", "s3cr3t-planted-value", "b" * 40, "pw-planted-1", "ak-planted-2"):
        assert planted not in text
    assert text.count("[redacted]") == 6
