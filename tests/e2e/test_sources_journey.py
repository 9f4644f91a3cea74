"""Discovery (issue 14): security uploads a provider export on the Sources page, reads the dry-run preview
(nothing written yet), applies it, and finds the run and the discovered identity's provenance on its page."""

import pytest

from inventory.models import ServiceIdentity, SourceRun
from tests.e2e.helpers import expect
from tests.inventory.discovery.helpers import FIXTURES

pytestmark = pytest.mark.browser


def test_upload_preview_then_apply(page, make_user, sign_in):
    make_user("sec", roles=("security",))
    page.goto("/sources/")
    sign_in(page, "sec")
    page.goto("/sources/")
    page.get_by_label("Source kind").select_option("okta-apps")
    page.get_by_label("Account").fill("acme")
    page.get_by_label("File").set_input_files(str(FIXTURES / "okta-apps.json"))
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Preview: okta-apps (acme)")
    expect(preview).to_contain_text("identity.discovered")
    assert not SourceRun.objects.exists() and not ServiceIdentity.objects.exists()  # a preview writes nothing
    with page.expect_navigation():
        preview.get_by_role("button", name="Apply").click()
    expect(page.locator(".messages")).to_contain_text("Applied as source run")
    run = SourceRun.objects.get()
    assert (run.kind, run.account, run.counts["created"]["identities"]) == ("okta-apps", "acme", 3)
    expect(page.locator("#runs")).to_contain_text("okta-apps")
    identity = ServiceIdentity.objects.order_by("pk").first()
    page.goto(f"/identities/{identity.pk}/")
    expect(page.locator("#provenance")).to_contain_text("okta-apps")
    expect(page.locator("#provenance")).to_contain_text("acme")
