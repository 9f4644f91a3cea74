"""Issue 15 in a browser: the findings list's tool and owner filters are pickers found by typing (the issue 17
autocomplete), and choosing one reloads the list in place with the filter in the URL; removing it lists all again."""

import re

import pytest

from tests.e2e.helpers import expect
from tests.e2e.test_home_journeys import world  # noqa: F401  (the estate every home journey starts from)
from tests.factories import BindingFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.browser


def test_security_filters_findings_by_tool_and_owner_by_typing(world, page, sign_in):  # noqa: F811
    # A second tool of another owner with a finding of its own, so that the filter has something to leave out.
    other = ToolFactory(name="Billing Agent", slug="billing-agent")
    identity = IdentityFactory(owner=other.owner, name="svc-billing", interactive_use_seen=True)
    BindingFactory(tool=other, identity=identity)
    from inventory.detection.scan import scan_create, scan_run

    scan_run(scan_create().pk)

    sign_in(page, "sam")
    page.goto("/findings/?status=")
    results = page.locator("#results")
    expect(results).to_contain_text("svc-billing")
    expect(results).to_contain_text("svc-crm-reader")

    tool = page.get_by_role("combobox", name="Tool")
    tool.fill("support")
    options = page.get_by_role("listbox", name="Tool").get_by_role("option")
    expect(options).to_have_text(["Customer Support Bot (support-bot)"])
    with page.expect_response(re.compile(r"/findings/\?.*tool=support-bot")):
        options.first.click()
    expect(page).to_have_url(re.compile(r"tool=support-bot"))
    expect(results).not_to_contain_text("svc-billing")
    expect(results).to_contain_text("svc-crm-reader")
    expect(page.get_by_role("button", name="Remove Customer Support Bot (support-bot)")).to_be_visible()

    # The owner picker offers owners by username; olivia owns the support bot.
    owner = page.get_by_role("combobox", name="Owner")
    owner.fill("oliv")
    with page.expect_response(re.compile(r"/findings/\?.*owner=olivia")):
        page.get_by_role("listbox", name="Owner").get_by_role("option", name="olivia").click()
    expect(page).to_have_url(re.compile(r"owner=olivia"))
    expect(results).to_contain_text("svc-crm-reader")

    # Removing the tool lists every tool of that owner again; a reload keeps the chosen owner, named.
    with page.expect_response(re.compile(r"/findings/\?")):
        page.get_by_role("button", name="Remove Customer Support Bot (support-bot)").click()
    expect(page).not_to_have_url(re.compile(r"tool=support-bot"))
    page.reload()
    expect(page.get_by_role("button", name="Remove olivia")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Remove Customer Support Bot"))).to_have_count(0)
