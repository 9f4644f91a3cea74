"""The optional push sink: the export stream (inventory/audit/export.py) delivered to a SIEM by a Celery task.

SIEM_PUSH_URL names the sink:
- `syslog+tcp://host:port` or `syslog+tls://host:port`: RFC 5424 messages, octet-counted framing (RFC 6587, and RFC
  5425 over TLS), facility 13 (log audit), severity warning for a deny and informational otherwise; the message is
  the export line's JSON. TLS checks the server's certificate (SIEM_PUSH_CA_FILE for a private CA).
- `https://...`: one POST per page with the NDJSON as the body; with SIEM_PUSH_SECRET, the header
  `X-NHI-Signature: sha256=<hex HMAC of the body>`. Plain http is refused except to a loopback address.
Delivery is at least once: the cursor moves only after the sink took the page, so a crash in between sends the page
again (each line carries its `type` and `id`, which deduplicate it). The lag (`siem_push_lag`) is the age of the
oldest row not yet delivered.
"""

import hashlib
import hmac
import ipaddress
import logging
import socket
import ssl
import time
from datetime import datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from inventory.audit.export import BadCursor, Cursor, Page, dumps, export_page, line_time
from inventory.models import AccessEvent, AuditEntry, ExportCursor

logger = logging.getLogger(__name__)

CURSOR_NAME = "siem"
# RFC 5424: facility 13 is "log audit"; severities 4 (warning) and 6 (informational).
FACILITY = 13
APP_NAME = "nhi-portal"
# One task run delivers pages until caught up or this many seconds have passed, then leaves the rest to the next run.
RUN_SECONDS = 45


class SinkError(Exception):
    """The sink did not take a page (unreachable, refused, timed out): the task retries with backoff."""


def sink_url() -> str:
    return str(getattr(settings, "SIEM_PUSH_URL", "") or "")


def _timeout() -> float:
    return float(getattr(settings, "SIEM_PUSH_TIMEOUT_SECONDS", 10))


# Formatting ---------------------------------------------------------------------------------------------------------


def syslog_message(line: dict, hostname: str) -> bytes:
    """One RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA BOM MSG."""
    severity = 4 if line.get("decision") == AccessEvent.Decision.DENY else 6
    stamp = line_time(line).isoformat().replace("+00:00", "Z")
    header = f"<{FACILITY * 8 + severity}>1 {stamp} {hostname} {APP_NAME} - {line['type']} -"
    return header.encode("ascii") + b" \xef\xbb\xbf" + dumps(line).encode()


def octet_counted(message: bytes) -> bytes:
    return str(len(message)).encode("ascii") + b" " + message


def _hostname() -> str:
    name = "".join(ch for ch in socket.gethostname() if 33 <= ord(ch) <= 126)
    return (name or "-")[:255]


# Sinks --------------------------------------------------------------------------------------------------------------


def _send_syslog(url, page: Page) -> None:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise ImproperlyConfigured("SIEM_PUSH_URL: a syslog sink needs a host and a port")
    hostname = _hostname()
    data = b"".join(octet_counted(syslog_message(line, hostname)) for line in page.lines)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=_timeout()) as raw:
            if parts.scheme == "syslog+tls":
                ca_file = getattr(settings, "SIEM_PUSH_CA_FILE", "") or None
                context = ssl.create_default_context(cafile=ca_file)
                with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                    tls.sendall(data)
            else:
                raw.sendall(data)
    except OSError as error:
        raise SinkError(f"syslog sink {parts.hostname}:{parts.port}: {type(error).__name__}") from error


def _send_webhook(url: str, page: Page) -> None:
    body = b"".join((dumps(line) + "\n").encode() for line in page.lines)
    headers = {"Content-Type": "application/x-ndjson"}
    secret = getattr(settings, "SIEM_PUSH_SECRET", "")
    if secret:
        headers["X-NHI-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=_timeout(), allow_redirects=False)
    except requests.RequestException as error:
        raise SinkError(f"webhook sink: {type(error).__name__}") from error
    if not 200 <= answer.status_code < 300:
        raise SinkError(f"webhook sink answered {answer.status_code}")


def check_sink_url(url: str) -> str:
    """The sink's kind for a URL, or ImproperlyConfigured naming what is wrong (never echoing the URL: it may hold
    credentials)."""
    parts = urlsplit(url)
    if parts.scheme in ("syslog+tcp", "syslog+tls"):
        return "syslog"
    if parts.scheme == "https" and parts.hostname:
        return "webhook"
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return "webhook"
    raise ImproperlyConfigured("SIEM_PUSH_URL must be syslog+tcp://, syslog+tls:// or https:// (http only to loopback)")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _send(url: str, page: Page) -> None:
    if check_sink_url(url) == "syslog":
        _send_syslog(url, page)
    else:
        _send_webhook(url, page)


# The job ------------------------------------------------------------------------------------------------------------


def push_pending() -> dict:
    """Deliver pages until caught up (or RUN_SECONDS), each under a lock on the cursor row so that two runs never send
    the same page. Raises SinkError (after recording it) when the sink does not take one."""
    url = sink_url()
    if not url:
        return {"configured": False, "delivered": 0}
    limit = int(getattr(settings, "SIEM_PUSH_BATCH", 1000))
    delivered = 0
    deadline = time.monotonic() + RUN_SECONDS
    # Outside the page's transaction, so that a failed page still leaves a row to record the error on.
    ExportCursor.objects.get_or_create(name=CURSOR_NAME)
    while time.monotonic() < deadline:
        try:
            with transaction.atomic():
                state = ExportCursor.objects.select_for_update().get(name=CURSOR_NAME)
                try:
                    cursor = Cursor.decode(state.cursor, legacy=True)
                except BadCursor as error:  # recorded and shown, not retried silently forever
                    raise SinkError(f"stored cursor {state.cursor[:64]!r}: {error}") from error
                page = export_page(cursor, limit)
                if not page.lines:
                    break
                _send(url, page)
                state.cursor = page.next.encode()
                state.delivered += len(page.lines)
                state.delivered_through = max(line_time(line) for line in page.lines)
                state.last_success_at = timezone.now()
                state.last_error = ""
                state.save()
        except SinkError as error:
            ExportCursor.objects.filter(name=CURSOR_NAME).update(
                last_error=str(error)[:500], last_error_at=timezone.now()
            )
            logger.warning("SIEM push failed: %s", error)
            raise
        delivered += len(page.lines)
        if not page.more:
            break
    return {"configured": True, "delivered": delivered}


def siem_push_lag() -> float | None:
    """Seconds the oldest row not yet delivered to the sink has waited (0 when caught up; None with no sink): for
    metrics and readiness. Two index lookups."""
    if not sink_url():
        return None
    text = ExportCursor.objects.filter(name=CURSOR_NAME).values_list("cursor", flat=True).first() or ""
    try:
        cursor = Cursor.decode(text, legacy=True)
    except BadCursor:  # the push stops on it (and records why): its lag runs from the start, as it then would
        cursor = Cursor()
    oldest: list[datetime] = []
    for model, position, time_field in (
        (AccessEvent, cursor.event_id, "recorded_at"),
        (AuditEntry, cursor.entry_id, "created_at"),
    ):
        first = model.objects.filter(pk__gt=position).order_by("pk").values_list(time_field, flat=True).first()
        if first is not None:
            oldest.append(first)
    return max(0.0, (timezone.now() - min(oldest)).total_seconds()) if oldest else 0.0


def siem_push_status() -> dict:
    """The push sink's state for the export page and the API: kind, lines delivered, last success, last error."""
    url = sink_url()
    state = ExportCursor.objects.filter(name=CURSOR_NAME).first()
    return {
        "configured": bool(url),
        "sink": check_sink_url(url) if url else None,
        "delivered": state.delivered if state else 0,
        "delivered_through": state.delivered_through if state else None,
        "last_success_at": state.last_success_at if state else None,
        "last_error": state.last_error if state else "",
        "last_error_at": state.last_error_at if state else None,
        "lag_seconds": siem_push_lag(),
    }
