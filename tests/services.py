"""Which real services this test run can reach, and what to do when one is missing.

Locally a missing PostgreSQL, Redis or Chromium skips the tests that need it, with the reason. In CI
(`NHI_REQUIRE_SERVICES=1`) the same absence fails the test, so CI always exercises the real parts.
"""

import os
import socket
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlparse

import pytest
from django.db import connection

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def services_required() -> bool:
    return os.environ.get("NHI_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def using_postgres() -> bool:
    return connection.vendor == "postgresql"


@cache
def redis_broker_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        return None
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1):
            return url
    except OSError:
        return None


def chromium_available() -> bool:
    if not os.path.exists(CHROMIUM):
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def moto_server():
    """moto in server mode (a real HTTP endpoint, as boto3 speaks to AWS) on a free local port, started empty; yields
    its URL."""
    import requests
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        requests.post(f"{endpoint}/moto-api/reset", timeout=5)  # moto's state outlives a server: start empty
        yield endpoint
    finally:
        server.stop()
