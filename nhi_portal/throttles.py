"""Rate limits at the edge: who the client is, a per-account budget for hot machine endpoints, and a limit on failed
API token authentication per client address."""

import logging
import threading
import time
from functools import cache

from django.conf import settings
from django.core.cache import cache as shared_cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

log = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@cache
def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """DRF's notation: "6000/min" is (6000, 60). None or "" means no limit."""
    if not rate:
        return None
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies in front, the address the outermost of
    them saw. Only as many X-Forwarded-For entries as there are proxies are believed: the rest are the client's to
    forge, and believing them would give every guess a fresh address."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR") if proxies else None
    if forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "")


class PerUserTokenBucket(BaseThrottle):
    """A token bucket per signed-in account, refilled at the rate named by `scope` in DRF's DEFAULT_THROTTLE_RATES.

    Per process: each web worker keeps its own buckets, so N workers allow up to N times the rate. That is the price
    of no shared-cache round trip on an endpoint answered in about a millisecond. DRF's UserRateThrottle, with the
    local-memory cache, measured 16 us a call with an empty history and 162 us with the 6,000 entries of a gateway
    asking 100 times a second (it unpickles and pickles the whole history on every call); this bucket, 2 us (timeit
    over allow_request, instantiation included, as DRF does per request). It also allows a burst of a full period's
    budget after a quiet spell, which a gateway starting up needs.
    """

    scope: str = ""
    _buckets: dict = {}  # (scope, user id) -> (tokens left, monotonic time of the last take)
    _lock = threading.Lock()
    _MAX_KEYS = 10_000

    def allow_request(self, request, view) -> bool:
        rate = parse_rate(api_settings.DEFAULT_THROTTLE_RATES.get(self.scope))
        if rate is None:
            return True
        capacity, period = rate
        refill = capacity / period
        user = request.user
        key = (self.scope, user.pk if user.is_authenticated else client_ip(request))
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * refill)
            if tokens < 1:
                self._wait = (1 - tokens) / refill
                return False
            if len(self._buckets) >= self._MAX_KEYS and key not in self._buckets:
                self._buckets.clear()  # a full bucket is the same as none, and cleared ones start full
            self._buckets[key] = (tokens - 1, now)
        return True

    def wait(self) -> float:
        return self._wait

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls._buckets.clear()


class AuthorizeThrottle(PerUserTokenBucket):
    """Each gateway account has its own budget on POST /authorize/; no gateway can use up another's."""

    scope = "authorize"


class TokenFailureLimit:
    """Failed token authentications per client address, in fixed windows of the "token_failure" rate.

    Only failures are counted, in the shared cache so that every worker sees them. Once an address is over the limit,
    the worker that saw it answers that address 429 before looking any token up until the window ends, so a flood of
    guesses costs no database query; other workers learn it at that address's next failure there. A request with no
    blocked address in this worker pays one empty-dict check.
    """

    def __init__(self):
        self._blocked: dict[str, float] = {}  # client address -> time.time() when its window ends

    def blocked_for(self, request) -> float | None:
        """Seconds until this client may try again, if this worker knows it is over the limit."""
        if not self._blocked:
            return None
        until = self._blocked.get(client_ip(request))
        if until is None:
            return None
        remaining = until - time.time()
        return remaining if remaining > 0 else None

    def record_failure(self, request) -> float | None:
        """Count one failure; the seconds to wait if the client is now over the limit."""
        rate = parse_rate(api_settings.DEFAULT_THROTTLE_RATES.get("token_failure"))
        if rate is None:
            return None
        limit, period = rate
        now = time.time()
        window = int(now // period)
        address = client_ip(request)
        key = f"nhi:token-failures:{address}:{window}"
        try:
            shared_cache.add(key, 0, timeout=period)
            failures = shared_cache.incr(key)
        except Exception:  # the limit is a defence in depth; a cache outage must not turn 401s into 500s
            log.exception("could not count a failed token authentication")
            return None
        if failures <= limit:
            return None
        until = (window + 1) * period
        self._blocked = {a: t for a, t in self._blocked.items() if t > now} | {address: until}
        return until - now

    def reset(self) -> None:
        self._blocked = {}


token_failures = TokenFailureLimit()
