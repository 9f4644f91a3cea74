"""The tools and identities lists carry each row's open findings and its worst severity, set-based: the same number of
queries at 3 rows as at 30."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BindingFactory, IdentityFactory, ToolFactory

from .conftest import finding

pytestmark = pytest.mark.django_db


def estate_with_findings(owner, n: int, *, start: int = 0) -> list:
    made = []
    for i in range(start, start + n):
        tool = ToolFactory(owner=owner, name=f"Copilot {i:02d}")
        identity = IdentityFactory(owner=owner, name=f"svc-reader-{i:02d}")
        BindingFactory(tool=tool, identity=identity)
        finding(subject=identity, severity="high", tool=tool, identity=identity)
        finding(subject=tool, severity="critical" if i % 2 else "low", tool=tool)
        finding(subject=identity, severity="critical", tool=tool, identity=identity, status="resolved")  # not counted
        made.append((tool, identity))
    return made


def cells_of(body: str, name: str) -> str:
    row = body[body.index(f">{name}</a>") :]
    return re.sub(r"\s+", " ", row[: row.index("</tr>")])


def test_tools_list_shows_open_findings_and_worst_severity(page_as, users):
    estate_with_findings(users["owner"], 2)
    body = page_as("owner").get("/tools/").content.decode()
    assert "Open findings" in body and "Risk" in body
    first, second = cells_of(body, "Copilot 00"), cells_of(body, "Copilot 01")
    assert "tool=" in first and ">2</a>" in first and "sev-high" in first  # high + low open
    assert ">2</a>" in second and "sev-critical" in second  # high + critical open; the resolved critical not counted


def test_identities_list_shows_open_findings_and_worst_severity(page_as, users):
    estate_with_findings(users["owner"], 1)
    IdentityFactory(owner=users["owner"], name="svc-clean")
    body = page_as("owner").get("/identities/").content.decode()
    assert ">1</a>" in cells_of(body, "svc-reader-00") and "sev-high" in cells_of(body, "svc-reader-00")
    assert "none open" in cells_of(body, "svc-clean")
    assert "Copilot 00" in cells_of(body, "svc-reader-00")  # tools by name, not slug


@pytest.mark.parametrize("url", ["/tools/", "/identities/"])
@pytest.mark.parametrize("role", ["owner", "security"])
def test_risk_columns_add_no_query_per_row(page_as, users, django_assert_num_queries, url, role):
    estate_with_findings(users["owner"], 3)
    client = page_as(role)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    estate_with_findings(users["owner"], 30, start=3)
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_csv_exports_carry_names_beside_slugs(page_as, users):
    from tests.factories import TeamFactory

    ((tool, _identity),) = estate_with_findings(users["owner"], 1)
    tool.team = TeamFactory(name="Customer Support", slug="support")
    tool.save()
    tools = b"".join(page_as("owner").get("/tools/export.csv").streaming_content).decode().splitlines()
    header, row = tools[0].split(","), tools[1].split(",")
    assert dict(zip(header, row, strict=True))["team_name"] == "Customer Support"
    identities = b"".join(page_as("owner").get("/identities/export.csv").streaming_content).decode().splitlines()
    header, row = identities[0].split(","), identities[1].split(",")
    assert dict(zip(header, row, strict=True))["tool_names"] == "Copilot 00"
