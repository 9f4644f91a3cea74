import io
import json
import logging

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from knox.models import AuthToken

from inventory.models import DetectorRun
from operations.logs import formatter
from tests.oidc_provider.fixtures import oidc_provider, sso  # noqa: F401  (the real OpenID Provider, and the portal set up for it)

METRICS_TOKEN = "metrics-token-7f3a9c2e41b8d6f0a5e3c7b9d1f2a4c6"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return METRICS_TOKEN


@pytest.fixture
def healthy(db):
    """Beat ticked and a scan ran just now; nothing is unsealed; the anchor is in tmp (root conftest)."""
    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="seal-audit-trail",
        task="inventory.tasks.seal_audit_trail",
        interval=every_minute,
        last_run_at=timezone.now(),
    )
    DetectorRun.objects.create(detector="credential_long_lived", ran_at=timezone.now())


@pytest.fixture
def api_token():
    def issue(user) -> str:
        return AuthToken.objects.create(user=user)[1]

    return issue


class CapturedLogs:
    """Every log record of the process, rendered by the portal's own JSON formatter."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter(json=True))

    def attach(self) -> None:
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        root.setLevel(logging.DEBUG)  # everything any library would write, debug lines included

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def requests(self) -> list[dict]:
        return [line for line in self.lines() if line.get("logger") == "nhi.request"]


@pytest.fixture
def json_logs():
    captured = CapturedLogs()
    root = logging.getLogger()
    level = root.level
    captured.attach()
    yield captured
    root.removeHandler(captured.handler)
    root.setLevel(level)
