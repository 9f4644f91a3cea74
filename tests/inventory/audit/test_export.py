"""Issue 17: GET /api/v1/events/export/ (security): NDJSON of access events and audit entries, resumable by cursor."""

import json

import pytest

from inventory.audit.export import Cursor, export_page
from inventory.models import AuditEntry

from .helpers import entries, events, seal

pytestmark = pytest.mark.django_db
URL = "/api/v1/events/export/"


def _lines(response) -> list[dict]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return [json.loads(line) for line in body.decode().splitlines()]


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("owner", 403), ("other_owner", 403), ("security", 200), ("manager", 403), ("gateway", 403)],
)
def test_export_is_for_security(api_as, role, status):
    entries(1)
    seal()
    response = api_as(role).get(URL)
    assert response.status_code == status
    if status != 200:
        assert b"tool.updated" not in (b"".join(response.streaming_content) if response.streaming else response.content)


def test_export_streams_both_kinds_in_id_order_and_resumes_without_loss_or_repeat(api_as):
    entries(3)
    events(4, decision="deny", reason="no_active_grant")
    entries(2, start=3)
    seal()
    client = api_as("security")
    seen, cursor, pages = [], "", 0
    while True:
        response = client.get(URL, {"after": cursor, "limit": 2})
        assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
        lines = _lines(response)
        tail = lines.pop()
        assert tail["type"] == "cursor" and tail["next"] == response["X-Next-Cursor"]
        assert len(lines) <= 2
        seen += lines
        cursor, pages = tail["next"], pages + 1
        if not tail["more"]:
            break
    assert pages == 5
    kinds = [(line["type"], line["id"]) for line in seen]
    assert len(kinds) == len(set(kinds)) == 9
    for kind in ("audit_entry", "access_event"):
        ids = [pk for t, pk in kinds if t == kind]
        assert ids == sorted(ids)
    event = next(line for line in seen if line["type"] == "access_event")
    assert event["decision"] == "deny" and event["reason"] == "no_active_grant" and event["tool_ref"] == "docs"
    entry = next(line for line in seen if line["type"] == "audit_entry")
    assert entry["action"] == "tool.updated" and entry["after"] == {"n": 0}
    # Caught up: the same cursor gives nothing more, and new sealed rows come after it.
    assert [line["type"] for line in _lines(client.get(URL, {"after": cursor}))] == ["cursor"]
    entries(1, start=99)
    seal()
    again = _lines(client.get(URL, {"after": cursor}))
    assert [line["object_id"] for line in again[:-1]] == ["99"]


def test_only_sealed_rows_are_exported(api_as):
    entries(2)
    seal()
    entries(1, start=2)  # not sealed yet: a reader past it could miss a row that commits late
    lines = _lines(api_as("security").get(URL))
    assert [line.get("object_id") for line in lines[:-1]] == ["0", "1"]


@pytest.mark.parametrize(
    "params",
    [{"after": "not-a-cursor"}, {"after": "MTox"[:-1] + "!"}, {"limit": "0"}, {"limit": "10001"}, {"limit": "x"},
     {"after": "A" * 80}],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api_as, params):
    entries(1)
    seal()
    response = api_as("security").get(URL, params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


def test_cursor_round_trip_and_page_bounds():
    cursor = Cursor(12, 34)
    assert Cursor.decode(cursor.encode()) == cursor and Cursor.decode("") == Cursor()
    entries(5)
    seal()
    page = export_page(Cursor(), 3)
    assert len(page.lines) == 3 and page.more and page.next == Cursor(0, page.lines[-1]["id"])
    rest = export_page(page.next, 3)
    assert len(rest.lines) == 2 and not rest.more
    assert AuditEntry.objects.count() == 5
