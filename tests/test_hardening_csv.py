"""CSV exports neutralise formulas as spreadsheets will read them: after NFKC folding (the fullwidth forms of = + - @),
past leading blanks and invisible format characters, and for a leading tab or line break."""

import csv
import io

import pytest
from django.urls import reverse

from inventory.exports import csv_cell
from tests.factories import IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

FORMULAS = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1:A2)",
    '\uff1dHYPERLINK("https://evil.example")',  # fullwidth equals
    "\uff0b1",  # fullwidth plus
    "\uff0d1",  # fullwidth hyphen-minus
    "\uff20SUM(A1)",  # fullwidth commercial at
    "\ufe66cmd",  # small equals
    "\u207a1",  # superscript plus
    "\t=1",
    "\r=1",
    "\n=1",
    " =1",
    "\u3000=1",  # ideographic space, which NFKC folds to a space
    "\u200b=1",  # zero-width space
    "\ufeff=1",  # byte order mark
]


@pytest.mark.parametrize("text", FORMULAS, ids=ascii)
def test_formulas_are_neutralised(text):
    assert csv_cell(text) == "'" + text


PLAIN = ["helpdesk", "svc-a", "a=b", "", "\uff21=1", "3", "2026-01-01", "\u2212 minus sign"]


@pytest.mark.parametrize("text", PLAIN, ids=ascii)
def test_plain_text_is_left_alone(text):
    assert csv_cell(text) == text


def test_none_is_empty():
    assert csv_cell(None) == ""


def _rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_tool_export_neutralises_fullwidth_formulas(page_as, owner):
    name = '\uff1dHYPERLINK("https://evil.example","x")'
    ToolFactory(owner=owner, slug="fw-tool", name=name, vendor="\uff20vendor")
    response = page_as("owner").get(reverse("inventory:tool_export"))
    assert response.status_code == 200
    [row] = [r for r in _rows(response) if r["slug"] == "fw-tool"]
    assert row["name"].startswith("'\uff1dHYPERLINK")
    assert row["vendor"] == "'\uff20vendor"


def test_identity_export_neutralises_a_leading_tab_and_fullwidth_minus(page_as, owner):
    IdentityFactory(owner=owner, name="fw-identity", provider="\uff0dcmd", external_id="\t=1+1")
    response = page_as("owner").get(reverse("inventory:identity_export"))
    [row] = [r for r in _rows(response) if r["name"] == "fw-identity"]
    assert row["provider"] == "'\uff0dcmd"
    assert row["external_id"] == "'\t=1+1"
