"""Rate limits at the API edge: failed token authentication per client address, and /authorize/ per gateway account
(never one budget for all gateways)."""

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from nhi_portal import throttles
from nhi_portal.throttles import PerUserTokenBucket, client_ip, parse_rate, token_failures
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HERE = "203.0.113.10"
THERE = "198.51.100.20"
BAD = "Token " + "0" * 64


@pytest.fixture
def rates(settings):
    """Set the rates under test; the suite runs with them off (nhi_portal/settings/test.py)."""

    def set_rates(**values):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"authorize": None, "token_failure": None} | values,
        }

    cache.clear()
    token_failures.reset()
    PerUserTokenBucket.reset()
    yield set_rates
    cache.clear()
    token_failures.reset()
    PerUserTokenBucket.reset()


def call(header: str, address: str = HERE, path: str = "/api/v1/scopes/"):
    return APIClient().get(path, HTTP_AUTHORIZATION=header, REMOTE_ADDR=address)


@pytest.fixture
def good(owner):
    return "Token " + AuthToken.objects.create(user=owner)[1]


def test_repeated_bad_tokens_from_one_address_get_429(rates):
    rates(token_failure="3/min")
    assert [call(BAD).status_code for _ in range(3)] == [401, 401, 401]
    throttled = call(BAD)
    assert throttled.status_code == 429
    assert "failed token authentications" in throttled.json()["detail"]
    assert 0 < int(throttled["Retry-After"]) <= 60


def test_good_tokens_cost_nothing_from_the_budget(rates, good):
    rates(token_failure="3/min")
    assert all(call(good).status_code == 200 for _ in range(10))
    assert [call(BAD).status_code for _ in range(3)] == [401, 401, 401]
    assert call(BAD).status_code == 429


def test_malformed_headers_count_as_failures(rates):
    rates(token_failure="2/min")
    assert [call(h).status_code for h in ("Token", "Token a b")] == [401, 401]
    assert call("Token x").status_code == 429


def test_a_blocked_address_is_refused_before_any_lookup(rates, good, django_assert_num_queries):
    rates(token_failure="1/min")
    call(BAD)
    assert call(BAD).status_code == 429
    with django_assert_num_queries(0):
        assert call(good).status_code == 429  # this worker stops looking tokens up for that address


def test_other_addresses_and_sessions_are_not_affected(rates, good, owner):
    rates(token_failure="1/min")
    call(BAD)
    assert call(BAD).status_code == 429
    assert call(BAD, address=THERE).status_code == 401
    assert call(good, address=THERE).status_code == 200
    browser = APIClient(REMOTE_ADDR=HERE)
    browser.force_login(owner)
    assert browser.get("/api/v1/scopes/").status_code == 200  # no token header, nothing to limit


def test_the_limit_lifts_after_its_window(rates, good):
    rates(token_failure="1/min")
    call(BAD)
    assert call(BAD).status_code == 429
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert call(good).status_code == 200
        assert call(BAD).status_code == 401


def test_a_forged_forwarded_for_is_not_a_fresh_address(rates):
    rates(token_failure="2/min")
    statuses = [
        APIClient().get("/api/v1/scopes/", HTTP_AUTHORIZATION=BAD, REMOTE_ADDR=HERE, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        for n in range(3)
    ]
    assert [r.status_code for r in statuses] == [401, 401, 429]


def test_client_address_behind_trusted_proxies(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.9")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.1.1.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "192.0.2.9"  # what our proxy saw; "6.6.6.6" is the client's own claim
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "6.6.6.6"


@pytest.fixture
def gateways(db):
    return UserFactory(username="gw-a", roles=["gateway"]), UserFactory(username="gw-b", roles=["gateway"])


def authorize(user):
    client = APIClient()
    client.force_authenticate(user)
    return client.post("/api/v1/authorize/", {"tool": "t", "identity": "i", "on_behalf_of": "u", "scope": "s"})


def test_authorize_is_rated_per_gateway(rates, gateways):
    rates(authorize="3/min")
    first, second = gateways
    assert [authorize(first).status_code for _ in range(3)] == [200, 200, 200]
    throttled = authorize(first)
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 20
    # Another gateway's budget is its own.
    assert [authorize(second).status_code for _ in range(3)] == [200, 200, 200]


def test_authorize_budget_refills(rates, gateways, monkeypatch):
    rates(authorize="60/min")  # one a second
    clock = [1000.0]
    monkeypatch.setattr(throttles, "time", SimpleNamespace(monotonic=lambda: clock[0], time=time.time))
    first, _ = gateways
    assert all(authorize(first).status_code == 200 for _ in range(60))
    assert authorize(first).status_code == 429
    clock[0] += 2.0
    assert [authorize(first).status_code for _ in range(3)] == [200, 200, 429]


def test_authorize_is_not_limited_when_no_rate_is_set(rates, gateways):
    rates()
    assert all(authorize(gateways[0]).status_code == 200 for _ in range(20))


@pytest.mark.parametrize(
    ("rate", "parsed"), [("6000/min", (6000, 60)), ("10/s", (10, 1)), ("5/hour", (5, 3600)), ("", None), (None, None)]
)
def test_rates_use_drf_notation(rate, parsed):
    assert parse_rate(rate) == parsed


def test_the_default_rates(settings):
    from nhi_portal.settings import base

    assert base.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["authorize"] == "60000/min"
    assert parse_rate(base.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token_failure"]) is not None


def test_a_malformed_rate_is_refused_at_start_up(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from nhi_portal.settings.env import env_rate

    monkeypatch.setenv("AUTHORIZE_RATE", "lots")
    with pytest.raises(ImproperlyConfigured):
        env_rate("AUTHORIZE_RATE", "6000/min")
    monkeypatch.setenv("AUTHORIZE_RATE", "")
    assert env_rate("AUTHORIZE_RATE", "6000/min") is None
    monkeypatch.delenv("AUTHORIZE_RATE")
    assert env_rate("AUTHORIZE_RATE", "6000/min") == "6000/min"
