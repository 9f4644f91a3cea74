"""Browser journeys through the inventory pages: sign in, filter and sort with htmx, open, edit, share a URL."""

import re
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import choices
from inventory.models import AITool, AuditEntry
from tests.e2e.conftest import DESKTOP, PHONE, RESULTS_DIR
from tests.e2e.helpers import expect, query_has, swap_results
from tests.factories import BindingFactory, CredentialFactory, IdentityFactory, TeamFactory, ToolFactory

pytestmark = pytest.mark.browser

STAGING, PROD, DEV = choices.Environment.STAGING, choices.Environment.PROD, choices.Environment.DEV

# (name, environment). First words are distinct, so every database collation sorts these the same way.
OWNER_TOOLS = [
    ("Acorn Assistant", PROD), ("Aspen Agent", DEV), ("Badger Bot", STAGING), ("Bramble Bot", PROD),
    ("Cedar Copilot", DEV), ("Comet Copilot", STAGING), ("Delta Digest", PROD), ("Dune Digest", DEV),
    ("Ember Agent", STAGING), ("Falcon Helpdesk", STAGING), ("Garnet Search", PROD), ("Harbor Helpdesk", STAGING),
    ("Iris Indexer", DEV), ("Juniper Janitor", PROD), ("Kestrel Helpdesk", PROD), ("Lumen Linter", DEV),
    ("Maple Mailer", STAGING), ("Nimbus Notes", PROD), ("Onyx Helpdesk", DEV), ("Pike Planner", STAGING),
    ("Quartz Query", PROD), ("Raven Helpdesk", STAGING), ("Sable Router", STAGING), ("Tundra Triage", DEV),
    ("Umber Uploader", PROD), ("Vesper Voice", DEV), ("Willow Writer", PROD), ("Xenon Exporter", DEV),
    ("Yarrow Yield", STAGING), ("Zephyr Zapper", PROD),
]  # fmt: skip
# Another owner's tools, named to land in the middle of the owner's filtered and sorted results if they leaked.
RIVAL_TOOLS = [("Condor Helpdesk", STAGING), ("Osprey Helpdesk", STAGING), ("Mallard Bot", PROD), ("Heron Agent", DEV)]
DESCRIPTIONS = {"Sable Router": "Routes helpdesk tickets to the right queue."}  # found by search, not by name
KINDS = [choices.ToolKind.ASSISTANT, choices.ToolKind.AGENT, choices.ToolKind.SUPPORT_BOT, choices.ToolKind.MCP_SERVER]

EDITED = "Harbor Helpdesk"
HELPDESK_STAGING = ["Falcon Helpdesk", "Harbor Helpdesk", "Raven Helpdesk", "Sable Router"]  # the owner's


@dataclass
class Inventory:
    owner: object
    rival: object
    manager: object
    edited: AITool
    identity: object
    rival_tool: AITool


@pytest.fixture
def inventory(make_user) -> Inventory:
    owner, rival = make_user("owner"), make_user("rival")
    manager = make_user("mgr", roles=("manager",))
    platform = TeamFactory(name="Platform", slug="platform")
    support = TeamFactory(name="Support", slug="support")
    tools = {}
    for i, (name, environment) in enumerate(OWNER_TOOLS):
        tools[name] = ToolFactory(
            name=name,
            slug=name.lower().replace(" ", "-"),
            owner=owner,
            team=platform if i % 2 else support,
            environment=environment,
            kind=KINDS[i % len(KINDS)],
            description=DESCRIPTIONS.get(name, ""),
        )
    for name, environment in RIVAL_TOOLS:
        tools[name] = ToolFactory(
            name=name, slug=name.lower().replace(" ", "-"), owner=rival, team=support, environment=environment
        )
    identity = IdentityFactory(name="svc-harbor-helpdesk", owner=owner, provider="zendesk", environment=STAGING)
    BindingFactory(tool=tools[EDITED], identity=identity)
    CredentialFactory(identity=identity, last4="7F3a", created_at=timezone.now() - timedelta(days=100))
    CredentialFactory(identity=identity, last4="Qz91", kind=choices.CredentialKind.CLIENT_SECRET)
    return Inventory(owner, rival, manager, tools[EDITED], identity, tools["Condor Helpdesk"])


def names(page):
    """The tool names in the results table, in display order."""
    return page.locator("#results tbody td:first-child > a")


def owner_names(environment=None) -> list[str]:
    return sorted(n for n, env in OWNER_TOOLS if environment in (None, env))


def test_owner_filters_sorts_opens_and_edits_a_tool(page, inventory, sign_in):
    tool = inventory.edited
    before = AITool.objects.values().get(pk=tool.pk)

    # Signed out, the list sends you to sign in and back.
    page.goto("/tools/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/tools/$"))
    sign_in(page, "owner")
    expect(page).to_have_url(re.compile(r"/tools/$"))

    # Only the owner's 30 tools, 25 a page, by name.
    expect(page.locator("#result-count")).to_have_text("30 tools")
    expect(names(page)).to_have_text(owner_names()[:25])
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")
    swap_results(page, lambda: page.get_by_role("link", name="Next →").click())
    expect(page).to_have_url(query_has(page="2"))
    expect(names(page)).to_have_text(owner_names()[25:])

    # Environment filter: swapped in place, URL pushed, back to page one, nobody else's tools.
    swap_results(page, lambda: page.get_by_label("Environment").select_option(STAGING))
    expect(page).to_have_url(query_has(environment=STAGING))
    assert "page=" not in page.url
    expect(page.locator("#result-count")).to_have_text("10 tools")
    expect(names(page)).to_have_text(owner_names(STAGING))
    expect(page.locator("#results tbody .chip.env-staging")).to_have_count(10)
    expect(page.locator("#results tbody tr td:nth-child(4)")).to_have_text(["owner"] * 10)

    # Sorting by name, then the other way; the filter stays.
    swap_results(page, lambda: page.get_by_role("link", name="Name", exact=True).click())
    expect(page).to_have_url(query_has(environment=STAGING, ordering="name"))
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Name ▲")
    expect(names(page)).to_have_text(owner_names(STAGING))
    swap_results(page, lambda: page.get_by_role("link", name="Name ▲").click())
    expect(page).to_have_url(query_has(environment=STAGING, ordering="-name"))
    expect(page.locator("th[aria-sort=descending]")).to_have_text("Name ▼")
    expect(names(page)).to_have_text(owner_names(STAGING)[::-1])

    # Search (name or description) on top of the filter and the sort.
    swap_results(page, lambda: page.get_by_label("Search").fill("helpdesk"))
    expect(page).to_have_url(query_has(search="helpdesk", environment=STAGING, ordering="-name"))
    expect(names(page)).to_have_text(HELPDESK_STAGING[::-1])
    expect(page.locator("#export-link")).to_have_attribute("href", query_has(search="helpdesk", environment=STAGING))
    for name, _ in RIVAL_TOOLS:
        expect(page.get_by_text(name)).to_have_count(0)
    shared_url = page.url

    _screenshot_list(page)

    # Another owner's tool is not there, even by URL.
    assert page.request.get(f"/tools/{inventory.rival_tool.pk}/").status == 404
    assert page.request.get(f"/tools/{inventory.rival_tool.pk}/edit/").status == 404

    # Open the tool: its identity and the last four characters of each credential, never more.
    page.get_by_role("link", name=EDITED).click()
    expect(page).to_have_url(re.compile(rf"/tools/{tool.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(EDITED)
    identity = page.locator(f"#identity-{inventory.identity.pk}")
    expect(identity.get_by_role("link", name="svc-harbor-helpdesk")).to_be_visible()
    expect(identity.locator("code")).to_have_text(["…Qz91", "…7F3a"])  # newest first
    expect(_fact(page, "Environment")).to_have_text("Staging")

    # An invalid edit shows the error on the field and changes nothing.
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/tools/{tool.pk}/edit/$"))
    audits = AuditEntry.objects.count()
    page.get_by_label("Name *").fill("")
    page.get_by_label("Description").fill("Not saved: the name is missing.")
    page.get_by_label("Environment *").select_option(PROD)
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/tools/{tool.pk}/edit/$"))
    name_field = page.locator(".field.invalid", has=page.get_by_label("Name *"))
    expect(name_field.locator(".error")).to_have_text("This field is required.")
    expect(page.locator(".messages")).to_have_count(0)
    assert AITool.objects.values().get(pk=tool.pk) == before
    assert AuditEntry.objects.count() == audits

    # A valid edit lands on the detail page with a message, and keeps the tool's identities.
    page.get_by_label("Name *").fill(EDITED)
    page.get_by_label("Description").fill("Answers tier-1 helpdesk tickets.")
    page.get_by_label("Environment *").select_option(PROD)
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/tools/{tool.pk}/$"))
    expect(page.locator(".messages")).to_have_text(f"Saved {EDITED}.")
    expect(_fact(page, "Environment")).to_have_text("Production")
    expect(page.get_by_text("Answers tier-1 helpdesk tickets.")).to_be_visible()
    expect(identity.get_by_role("link", name="svc-harbor-helpdesk")).to_be_visible()
    tool.refresh_from_db()
    assert (tool.name, tool.environment, tool.description) == (EDITED, PROD, "Answers tier-1 helpdesk tickets.")
    assert list(tool.identities.all()) == [inventory.identity]
    assert list(AuditEntry.objects.filter(action="tool.updated").values_list("actor__username", "object_id")) == [
        ("owner", str(tool.pk))
    ]

    # The pushed URL is shareable: loaded directly, the server renders the same filter and sort without htmx,
    # and the edited tool, now in production, has left the staging results.
    response = page.goto(shared_url)
    assert response.ok and "hx-request" not in response.request.headers
    expect(page.get_by_label("Search")).to_have_value("helpdesk")
    expect(page.get_by_label("Environment")).to_have_value(STAGING)
    expect(page.locator("th[aria-sort=descending]")).to_have_text("Name ▼")
    expect(names(page)).to_have_text([n for n in HELPDESK_STAGING[::-1] if n != EDITED])
    expect(page.locator("#result-count")).to_have_text("3 tools")


def _fact(page, term: str):
    """The <dd> after a <dt> in the detail page's facts."""
    return page.locator(f"xpath=//dl[@class='facts']/dt[normalize-space()='{term}']/following-sibling::dd[1]")


def _screenshot_list(page):
    """The filtered list at laptop and phone sizes, for a human to look at. The page must never scroll sideways."""
    RESULTS_DIR.mkdir(exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=RESULTS_DIR / f"tool-list-filtered-{size['width']}x{size['height']}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the {label} page scrolls sideways by {overflow}px"
    page.set_viewport_size(DESKTOP)


def test_manager_sees_every_tool_and_cannot_edit(page, inventory, sign_in):
    # A shared URL survives the sign-in redirect.
    page.goto("/tools/?search=helpdesk&environment=staging&ordering=-name")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    sign_in(page, "mgr")
    expect(page.locator(".who")).to_contain_text("mgr · manager")
    expect(page).to_have_url(query_has(search="helpdesk", environment=STAGING, ordering="-name"))
    everyone = sorted([*HELPDESK_STAGING, "Condor Helpdesk", "Osprey Helpdesk"], reverse=True)
    expect(names(page)).to_have_text(everyone)
    expect(page.locator("#results tbody tr td:nth-child(4)")).to_have_text(
        ["rival" if n.startswith(("Condor", "Osprey")) else "owner" for n in everyone]
    )
    expect(page.get_by_role("link", name="Register a tool")).to_have_count(0)

    page.goto("/tools/")
    expect(page.locator("#result-count")).to_have_text(f"{len(OWNER_TOOLS) + len(RIVAL_TOOLS)} tools")

    # Anyone's tool opens read-only, and the edit and create pages refuse a manager.
    page.goto(f"/tools/{inventory.rival_tool.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Condor Helpdesk")
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    page.goto(f"/tools/{inventory.edited.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(EDITED)
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    for url in (f"/tools/{inventory.edited.pk}/edit/", f"/tools/{inventory.rival_tool.pk}/edit/", "/tools/new/"):
        assert page.goto(url).status == 403, url


def test_sorting_right_after_typing_a_search_keeps_table_and_url_in_step(page, inventory, sign_in):
    """Type a search, then click a column header at once, on a network where the older request answers last."""
    page.goto("/accounts/login/")
    sign_in(page, "owner")
    page.goto("/tools/?environment=staging")

    def slow_unsorted(route):
        if route.request.headers.get("hx-request") and "ordering=" not in route.request.url:
            time.sleep(0.5)
        route.continue_()

    swap_results(page, lambda: page.get_by_label("Search").fill("helpdesk"))
    page.route(re.compile(r"/tools/\?"), slow_unsorted)
    page.get_by_role("link", name="Name", exact=True).click()
    page.wait_for_timeout(1500)  # let any stale response land: the assertion is about the state it leaves
    expect(page).to_have_url(query_has(ordering="name"), timeout=1000)
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Name ▲", timeout=1000)
