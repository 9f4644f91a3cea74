"""Issue 17: the tool form's pickers in a real browser: type, choose with the keyboard, remove, save."""

import re

import pytest

from inventory.models import AITool
from tests.e2e.helpers import expect
from tests.factories import IdentityFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.browser


def test_pick_identities_and_people_by_typing(page, make_user, sign_in):
    owner = make_user("picker-owner")
    tool = ToolFactory(owner=owner, name="Picker Tool")
    for name in ("svc-alpha-reader", "svc-alpha-writer", "svc-beta"):
        IdentityFactory(name=name, owner=owner)
    IdentityFactory(name="svc-alpha-foreign")  # someone else's: never offered
    UserFactory(username="zoe-reviewer", first_name="Zoe")

    page.goto(f"/tools/{tool.pk}/edit/")
    sign_in(page, "picker-owner")
    page.goto(f"/tools/{tool.pk}/edit/")

    identities = page.get_by_role("combobox", name="Identities")
    identities.fill("alpha")
    listbox = page.get_by_role("listbox", name="Identities")
    expect(listbox.get_by_role("option")).to_have_count(2)
    expect(listbox).not_to_contain_text("foreign")
    identities.press("ArrowDown")
    identities.press("ArrowDown")
    expect(identities).to_have_attribute("aria-activedescendant", re.compile(r"-option-1$"))
    identities.press("Enter")  # chooses svc-alpha-writer, does not submit
    expect(page.get_by_role("button", name="Remove svc-alpha-writer")).to_be_visible()
    identities.fill("beta")
    listbox.get_by_role("option", name="svc-beta").click()
    page.get_by_role("button", name="Remove svc-alpha-writer").click()
    expect(page.get_by_role("button", name="Remove svc-alpha-writer")).to_have_count(0)

    people = page.get_by_role("combobox", name="May act for these people")
    people.fill("zoe")
    page.get_by_role("listbox", name="May act for these people").get_by_role(
        "option", name="zoe-reviewer (Zoe)"
    ).click()

    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    tool = AITool.objects.get(pk=tool.pk)
    assert [i.name for i in tool.identities.all()] == ["svc-beta"]
    assert [u.username for u in tool.allowed_users.all()] == ["zoe-reviewer"]
