"""The findings list filters by tool and owner with pickers found by typing (issue 15), not free-text slugs: the
choice endpoints answer only what the reader may see, the page renders the chosen tool and owner by name, and the
filter still takes the slug and the username."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import Finding
from tests.factories import BindingFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

TOOLS = reverse("inventory:finding_filter_tools")
OWNERS = reverse("inventory:finding_filter_owners")
LIST = reverse("inventory:finding_list")


@pytest.fixture
def tools(users):
    owner, other = users["owner"], users["other_owner"]
    owner.first_name, owner.last_name = "Olivia", "Owner"
    owner.save()
    mine = ToolFactory(owner=owner, name="Helpdesk Copilot", slug="helpdesk-copilot")
    theirs = ToolFactory(owner=other, name="Helpdesk Summarizer", slug="helpdesk-summarizer")
    for tool in (mine, theirs):
        identity = IdentityFactory(owner=tool.owner, name=f"svc-{tool.slug}", interactive_use_seen=True)
        BindingFactory(tool=tool, identity=identity)
        Finding.objects.create(
            detector="identity_human_use", subject_type="identity", subject_id=identity.pk, tool=tool,
            identity=identity, severity="high", first_seen_at=tool.created_at, recorded_last_seen_at=tool.created_at,
        )  # fmt: skip
    return {"mine": mine, "theirs": theirs}


def _results(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return json.loads(response.content)["results"]


@pytest.mark.parametrize("url", [TOOLS, OWNERS])
@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("owner", 200), ("other_owner", 200), ("security", 200), ("manager", 200), ("gateway", 403)],
)
def test_who_may_ask(page_as, tools, url, role, status):
    assert page_as(role).get(url, {"q": "help"}).status_code == status


def test_tools_are_those_the_reader_sees_by_name_with_the_slug_as_value(page_as, tools):
    assert _results(page_as("owner").get(TOOLS, {"q": "helpdesk"})) == [
        {"id": "helpdesk-copilot", "label": "Helpdesk Copilot (helpdesk-copilot)"}
    ]
    assert [r["id"] for r in _results(page_as("other_owner").get(TOOLS, {"q": "HELPDESK"}))] == ["helpdesk-summarizer"]
    assert [r["id"] for r in _results(page_as("manager").get(TOOLS, {"q": "helpdesk"}))] == [
        "helpdesk-copilot", "helpdesk-summarizer"
    ]  # fmt: skip
    assert [r["id"] for r in _results(page_as("security").get(TOOLS, {"q": "summar"}))] == ["helpdesk-summarizer"]
    for q in ("%", "_", "'; drop table", "x" * 500, "\u202e"):
        assert _results(page_as("security").get(TOOLS, {"q": q})) == []


def test_owners_are_the_owners_of_tools_the_reader_sees(page_as, tools, users):
    assert _results(page_as("owner").get(OWNERS, {"q": ""})) == [{"id": "owner", "label": "owner (Olivia Owner)"}]
    assert [r["id"] for r in _results(page_as("other_owner").get(OWNERS))] == ["owner2"]
    # Security and managers see every tool, so every owner; people who own nothing are not offered.
    assert [r["id"] for r in _results(page_as("manager").get(OWNERS))] == ["owner", "owner2"]
    assert [r["id"] for r in _results(page_as("security").get(OWNERS, {"q": "olivia"}))] == ["owner"]


def test_the_page_renders_pickers_and_the_chosen_tool_and_owner_by_name(page_as, tools):
    body = page_as("security").get(LIST).content.decode()
    assert f'<select id="filter-tool" name="tool" data-autocomplete="{TOOLS}"></select>' in body
    assert f'<select id="filter-owner" name="owner" data-autocomplete="{OWNERS}"></select>' in body
    assert 'placeholder="tool slug"' not in body and 'placeholder="username"' not in body
    response = page_as("security").get(LIST, {"tool": "helpdesk-copilot", "owner": "owner"})
    body = response.content.decode()
    assert '<option value="helpdesk-copilot" selected>Helpdesk Copilot (helpdesk-copilot)</option>' in body
    assert '<option value="owner" selected>owner (Olivia Owner)</option>' in body
    # The filter still takes the slug and the username: only the helpdesk copilot's finding is listed.
    assert "1 finding" in body and "svc-helpdesk-copilot" in body and "svc-helpdesk-summarizer" not in body


def test_a_tool_the_reader_may_not_see_is_not_named(page_as, tools):
    body = page_as("owner").get(LIST, {"tool": "helpdesk-summarizer"}).content.decode()
    assert '<option value="helpdesk-summarizer" selected>helpdesk-summarizer</option>' in body
    assert "Helpdesk Summarizer" not in body and "0 findings" in body


def test_chosen_filters_cost_the_same_whatever_the_rows(page_as, tools, users):
    client = page_as("security")

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST, {"tool": "helpdesk-copilot", "owner": "owner", "status": ""}).status_code == 200
        return len(captured.captured_queries)

    few = count()
    mine = tools["mine"]
    for i in range(40):
        identity = IdentityFactory(owner=mine.owner, name=f"svc-more-{i}")
        BindingFactory(tool=mine, identity=identity)
        Finding.objects.create(
            detector="identity_human_use", subject_type="identity", subject_id=identity.pk, tool=mine,
            identity=identity, severity="medium", first_seen_at=mine.created_at, recorded_last_seen_at=mine.created_at,
        )  # fmt: skip
    assert count() == few
