"""Per request: a request id, the log context, one log line, the HTTP metrics, and the API token's last use.

Outermost middleware, so it sees every answer, including those other middleware give (a redirect to HTTPS, the
lockout page, a 400 for NUL characters). The request id is the incoming `X-Request-ID` when it is well-formed (a
proxy or gateway in front set it, and the trail should follow it), otherwise a new one; it goes back in the
response's `X-Request-ID`, into every log line written while the request runs, and into the Celery tasks queued
meanwhile (`correlation.py`).

The log line names the method, the route pattern (`api/v1/tools/<int:pk>/`, never the path with its ids, and never
the query string, where a client may have put a token), the status, the duration and the user.
"""

import logging
import re
import time
import uuid

import structlog
from django.core.signals import request_finished
from django.dispatch import receiver
from django.utils.functional import empty

from nhi_portal import metrics

from . import token_use

logger = logging.getLogger("nhi.request")

HEADER = "X-Request-ID"
# What a proxy might send (a UUID, a hex or base64url id, a trace id with dots or dashes), and nothing that could
# forge a log line or carry a secret of any length.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
UNMATCHED = "<unmatched>"


def request_id_from(request) -> str:
    incoming = request.headers.get(HEADER, "")
    return incoming if _WELL_FORMED.fullmatch(incoming) else uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = request_id_from(request)
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        token_use.note(request)
        route = _route(request)
        structlog.contextvars.bind_contextvars(route=route, user=_user(request))
        response[HEADER] = request_id
        metrics.http_requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.http_request_seconds.labels(request.method, route).observe(seconds)
        logger.info(
            "request",
            extra={
                "method": request.method,
                "status_code": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        # The route is known from here on: lines the view writes carry it too.
        structlog.contextvars.bind_contextvars(route=_route(request))


@receiver(request_finished, dispatch_uid="operations.clear_log_context")
def _clear_log_context(**kwargs) -> None:
    # Not when the middleware returns: Django logs a 4xx or 5xx (django.request) after that, and the line should
    # still carry the request id and user. The request is over once its response is closed.
    structlog.contextvars.clear_contextvars()


_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _route(request) -> str:
    """The URL pattern that matched; a router's regular expression read as a path pattern (`(?P<pk>[0-9]+)` as
    `<pk>`), without its anchors, so a label reads the same whichever kind of pattern matched."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED
    # A router's optional trailing slash and escapes (`\.<format>/?`) read as the path they match.
    return re.sub(r"[\\^$?]", "", _GROUP.sub(r"<\1>", match.route))


def _user(request) -> str | None:
    """The username, or None for anonymous. A session user that the view never looked at is looked up here (one
    query), so every line names its user."""
    user = getattr(request, "user", None)
    if user is None:
        return None
    if getattr(user, "_wrapped", None) is empty:
        user._setup()
    return user.get_username() if user.is_authenticated else None
