"""Who may read the operations endpoints' details: the security team, a metrics token, or an allowed network.

Used by /readyz (details) and /metrics (everything). Three ways in, checked in this order:
- `Authorization: Bearer <METRICS_TOKEN>`: the scraper's token (Prometheus sends `authorization: credentials` as
  Bearer), compared in constant time; a wrong one counts as a failed token check, like a wrong API token.
- the client address (`nhi_portal.throttles.client_ip`, so TRUSTED_PROXY_COUNT applies) inside one of
  METRICS_ALLOWED_NETWORKS;
- a security user, signed in (session) or by API token (`Authorization: Token ...`).
"""

import enum
import hashlib
import hmac
import ipaddress
from functools import cache

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from nhi_portal import roles
from nhi_portal.authentication import TokenAuthentication
from nhi_portal.throttles import client_ip, token_failures


class Access(enum.Enum):
    ALLOWED = "allowed"
    ANONYMOUS = "anonymous"  # no credentials: 401
    FORBIDDEN = "forbidden"  # a known user without the right: 403
    BAD_CREDENTIALS = "bad_credentials"  # a wrong token: 401
    THROTTLED = "throttled"  # too many wrong tokens from this address: 429


def operations_access(request) -> Access:
    scheme, _, credentials = get_authorization_header(request).partition(b" ")
    scheme = scheme.lower()
    if scheme == b"bearer":
        if token_failures.blocked_for(request) is not None:
            return Access.THROTTLED
        if _is_metrics_token(credentials.strip()):
            return Access.ALLOWED
        return Access.THROTTLED if token_failures.record_failure(request) is not None else Access.BAD_CREDENTIALS
    if _in_allowed_network(client_ip(request)):
        return Access.ALLOWED
    if scheme == b"token":
        try:
            authenticated = TokenAuthentication().authenticate(request)
        except exceptions.Throttled:
            return Access.THROTTLED
        except exceptions.AuthenticationFailed:
            return Access.BAD_CREDENTIALS
        user = authenticated[0] if authenticated else None
        if authenticated:
            request.auth = authenticated[1]  # so that its use is recorded (operations.token_use), as DRF's views do
    else:
        user = request.user
    if user is None or not user.is_authenticated:
        return Access.ANONYMOUS
    return Access.ALLOWED if user.is_active and roles.is_security(user) else Access.FORBIDDEN


def _is_metrics_token(presented: bytes) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected or not presented:
        return False
    # Digests first: compare_digest is constant-time only for inputs of equal length, and this hides the length too.
    return hmac.compare_digest(hashlib.sha256(presented).digest(), hashlib.sha256(expected.encode()).digest())


def _in_allowed_network(address: str) -> bool:
    networks = _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


@cache
def _networks(specs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(spec, strict=False) for spec in specs)
