"""Issue 17: the SIEM push sink, against a real RFC 5424 syslog receiver over TCP and a real webhook, in threads."""

import hashlib
import hmac
import json
import re
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from inventory import tasks
from inventory.audit import siem
from inventory.models import AuditEntry, ExportCursor

from .helpers import entries, events, seal

pytestmark = pytest.mark.django_db
RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) nhi-portal - (?P<msgid>\S+) - \xef\xbb\xbf(?P<msg>.*)$", re.S
)


class _SyslogHandler(socketserver.StreamRequestHandler):
    """Octet-counted framing (RFC 6587 3.4.1): MSG-LEN SP SYSLOG-MSG, repeated."""

    def handle(self):
        while True:
            length = b""
            while (ch := self.rfile.read(1)) not in (b" ", b""):
                length += ch
            if not length:
                return
            self.server.messages.append(self.rfile.read(int(length)))


@pytest.fixture
def syslog_receiver():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SyslogHandler)
    server.daemon_threads = True
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _parsed(messages: list[bytes]) -> list[tuple[int, bytes, dict]]:
    out = []
    for message in messages:
        match = RFC5424.match(message)
        assert match is not None, message[:80]
        out.append((int(match["pri"]), match["msgid"], json.loads(match["msg"])))
    return out


def _wait_for(server, count: int) -> None:
    for _ in range(200):
        if len(server.messages) >= count:
            return
        threading.Event().wait(0.01)


def test_push_delivers_rfc5424_messages_over_tcp_and_moves_the_cursor(settings, syslog_receiver):
    settings.SIEM_PUSH_URL = f"syslog+tcp://127.0.0.1:{syslog_receiver.server_address[1]}"
    settings.SIEM_PUSH_BATCH = 2
    entries(2)
    events(1, decision="deny", reason="no_active_grant")
    seal()
    assert siem.siem_push_lag() > 0
    assert siem.push_pending() == {"configured": True, "delivered": 3}
    _wait_for(syslog_receiver, 3)
    parsed = _parsed(syslog_receiver.messages)
    assert sorted(msgid for _pri, msgid, _line in parsed) == [b"access_event", b"audit_entry", b"audit_entry"]
    assert sorted(line["object_id"] for _pri, msgid, line in parsed if msgid == b"audit_entry") == ["0", "1"]
    deny = next(p for p in parsed if p[1] == b"access_event")
    assert deny[0] == 13 * 8 + 4 and deny[2]["reason"] == "no_active_grant"  # log audit, warning
    assert {p[0] for p in parsed if p[1] == b"audit_entry"} == {13 * 8 + 6}  # informational
    state = ExportCursor.objects.get(name="siem")
    assert state.delivered == 3 and state.last_error == "" and state.last_success_at is not None
    # Caught up: nothing is sent twice, and the lag is zero until something new is written.
    assert siem.push_pending()["delivered"] == 0 and siem.siem_push_lag() == 0
    entries(1, start=7)
    seal()
    assert siem.push_pending()["delivered"] == 1
    _wait_for(syslog_receiver, 4)
    assert _parsed(syslog_receiver.messages[3:])[0][2]["object_id"] == "7"


def test_unreachable_sink_records_the_error_keeps_the_cursor_and_the_task_retries(settings, celery_eager):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.SIEM_PUSH_URL = f"syslog+tcp://127.0.0.1:{port}"
    settings.SIEM_PUSH_TIMEOUT_SECONDS = 1
    entries(2)
    seal()
    with pytest.raises(siem.SinkError):
        siem.push_pending()
    state = ExportCursor.objects.get(name="siem")
    assert state.cursor == "" and state.delivered == 0 and "ConnectionRefusedError" in state.last_error
    assert siem.siem_push_lag() > 0
    assert tasks.push_siem_export.autoretry_for == (siem.SinkError,) and tasks.push_siem_export.max_retries == 8


class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    server.received, server.status = [], 204
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_sink_posts_signed_ndjson(settings, webhook):
    settings.SIEM_PUSH_URL = f"http://127.0.0.1:{webhook.server_address[1]}/ingest"
    settings.SIEM_PUSH_SECRET = "s3cret-for-the-siem"
    entries(2)
    seal()
    webhook.status = 500
    with pytest.raises(siem.SinkError, match="500"):
        siem.push_pending()
    assert ExportCursor.objects.get(name="siem").cursor == ""
    webhook.status = 204
    assert siem.push_pending()["delivered"] == 2
    headers, body = webhook.received[-1]
    assert headers["Content-Type"] == "application/x-ndjson"
    expected = hmac.new(b"s3cret-for-the-siem", body, hashlib.sha256).hexdigest()
    assert headers["X-NHI-Signature"] == f"sha256={expected}"
    assert [json.loads(line)["object_id"] for line in body.decode().splitlines()] == ["0", "1"]
    assert "s3cret" not in ExportCursor.objects.get(name="siem").last_error


def test_without_a_sink_the_job_does_nothing(settings):
    settings.SIEM_PUSH_URL = ""
    entries(1)
    seal()
    assert siem.push_pending() == {"configured": False, "delivered": 0}
    assert siem.siem_push_lag() is None and not ExportCursor.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://siem.example.com/in", "ftp://siem.example.com/", "syslog+udp://127.0.0.1:514", "https:///x"]
)
def test_unsafe_or_unknown_sinks_are_refused(url):
    with pytest.raises(ImproperlyConfigured):
        siem.check_sink_url(url)


def test_a_cursor_stored_in_the_first_form_still_reads(settings, syslog_receiver):
    """Found by review: the push's stored cursor was base64 of `EVENT:ENTRY` before the plain form; after the upgrade
    the push must carry on from it, not fail silently on every run."""
    import base64

    settings.SIEM_PUSH_URL = f"syslog+tcp://127.0.0.1:{syslog_receiver.server_address[1]}"
    entries(2)
    seal()
    first_entry = AuditEntry.objects.order_by("pk").values_list("pk", flat=True).first()
    legacy = base64.urlsafe_b64encode(f"0:{first_entry}".encode()).decode().rstrip("=")
    ExportCursor.objects.create(name="siem", cursor=legacy)
    assert siem.push_pending()["delivered"] == 1  # the second entry only: the first was read before the upgrade
    assert ExportCursor.objects.get(name="siem").cursor.endswith(f":{first_entry + 1}")


def test_an_unreadable_stored_cursor_is_recorded_as_the_error(settings, syslog_receiver):
    settings.SIEM_PUSH_URL = f"syslog+tcp://127.0.0.1:{syslog_receiver.server_address[1]}"
    entries(1)
    seal()
    ExportCursor.objects.create(name="siem", cursor="not-a-cursor")
    with pytest.raises(siem.SinkError):
        siem.push_pending()
    assert siem.siem_push_lag() > 0  # readiness and metrics still answer
    assert "not a cursor" in ExportCursor.objects.get(name="siem").last_error
