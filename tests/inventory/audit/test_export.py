"""Issue 17: GET /api/v1/events/export/ (security): NDJSON of access events and audit entries, resumable by cursor."""

import json
import re

import pytest

from inventory.audit.export import CURSOR_PATTERN, MAX_LIMIT, Cursor, export_page
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


@pytest.mark.parametrize(
    "headers",
    [{"HTTP_ACCEPT": "application/x-ndjson"}, {"HTTP_ACCEPT": "text/html"}, {}],
)
@pytest.mark.parametrize("fmt", [None, "ndjson", "json", "nonsense"])
def test_errors_are_json_and_the_export_ndjson_whatever_the_client_accepts(api_as, headers, fmt):
    entries(1)
    seal()
    client = api_as("security")
    extra = {"format": fmt} if fmt else {}
    bad = client.get(URL, {"limit": "0", **extra}, **headers)
    assert bad.status_code == 400 and bad["Content-Type"] == "application/json"
    assert bad.json() == {"limit": ["Ensure this value is greater than or equal to 1."]}
    good = client.get(URL, extra, **headers)
    assert good.status_code == 200 and good["Content-Type"] == "application/x-ndjson"
    assert [line["type"] for line in _lines(good)] == ["audit_entry", "cursor"]


def test_the_documented_cursor_pattern_is_the_one_the_export_reads():
    from drf_spectacular.generators import SchemaGenerator

    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"][URL]["get"]
    after = next(p for p in operation["parameters"] if p["name"] == "after")["schema"]
    assert after["oneOf"] == [{"type": "string", "pattern": CURSOR_PATTERN}, {"type": "string", "maxLength": 0}]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, MAX_LIMIT)
    assert list(operation["responses"]["200"]["content"]) == ["application/x-ndjson"]
    assert "X-Next-Cursor" in operation["responses"]["200"]["headers"]


@pytest.mark.parametrize(
    ("after", "status"),
    [
        ("0:0", 200),
        ("12:34", 200),
        ("999999999999999999:999999999999999999", 200),  # 18 digits: within a bigint
        ("", 200),
        ("1:2\n", 400),  # `$` would match before the newline: the cursor is matched whole
        (" 1:2", 400),
        ("1:2 ", 400),
        ("-1:2", 400),
        ("1:", 400),
        ("1", 400),
        ("1:2:3", 400),
        ("\u0661:\u0662", 400),  # digits int() reads but the pattern does not
        ("9999999999999999999:0", 400),  # 19 digits
        ("MTox", 400),  # the earlier base64 form
    ],
)
def test_every_string_the_pattern_allows_is_a_cursor_and_no_other(api_as, after, status):
    response = api_as("security").get(URL, {"after": after})
    assert response.status_code == status, response.content
    assert (re.fullmatch(CURSOR_PATTERN, after) is not None or after == "") == (status == 200)
