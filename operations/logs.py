"""Structured logs: every line through structlog, JSON in production, readable in development.

Settings name `operations.logs.formatter` as LOGGING's formatter, so everything that logs through the standard
library (Django, Celery, the portal's own loggers) comes out the same way, with the request's or task's context
(request id, user, route; correlation id, task) that `middleware.py` and `correlation.py` bind in contextvars.

What a line may hold: the message and its arguments, the context above, and a few known fields. Never a request
body, header, query string or form field: nothing logs those, and `redact` is the second line of defence, masking
fields whose names say secret and values shaped like a credential. Tracebacks are rendered as text without local
variables (structlog's dict tracebacks would show them, request bodies and all).
"""

import functools
import logging
import re

import structlog

_SECRET_KEYS = re.compile(r"authorization|cookie|password|passwd|secret|token|api[_-]?key|credential", re.IGNORECASE)
# A credential's shape in free text: "Token abc...", "Bearer abc...", key=value pairs of secret-looking names.
_SECRET_VALUES = re.compile(
    r"(?i)\b(token|bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,}"
    r"|\b((?:password|passwd|secret|token|api[_-]?key|client_secret|access_token|id_token|code)=)[^&\s\"']+"
)
REDACTED = "[redacted]"
# Fields whose names look secret but hold nothing secret (a count of tokens, say) can be listed here.
_KEEP = {"token_failures"}


def _redact_text(text: str) -> str:
    # Both shapes need a separator: most values (ids, routes, names) have none and skip the expression (a request
    # line is written per request, so this runs about ten times per request).
    if "=" not in text and " " not in text:
        return text
    return _SECRET_VALUES.sub(lambda m: (m.group(2) or (m.group(1) + " ")) + REDACTED, text)


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    return key not in _KEEP and bool(_SECRET_KEYS.search(key))


def redact(_logger, _method, event_dict: dict) -> dict:
    for key, value in event_dict.items():
        if _secret_key(key) and value not in (None, ""):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = _redact_text(value)
    return event_dict


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure() -> None:
    """structlog's own loggers hand their events to the standard library, whose formatter (below) renders them."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def formatter(json: bool = True) -> logging.Formatter:
    """LOGGING's formatter factory: `{"()": "operations.logs.formatter", "json": True}`."""
    configure()
    renderer = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    return structlog.stdlib.ProcessorFormatter(
        # Of a record's extras only these: Django attaches the request itself to its request log records.
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder(allow=["status_code", "method", "duration_ms"])],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _keep,
            redact,
            renderer,
        ],
    )


def _keep(_logger, _method, event_dict: dict) -> dict:
    return event_dict


def get_logger(name: str):
    return structlog.stdlib.get_logger(name)
