"""Single sign-on in a real browser against a real OpenID Provider (tests/oidc_provider, node-oidc-provider) that
signs real ID tokens: the first sign-in creates the user with the role its groups claim gives, sign-out ends the
provider's session too, and after the claim changes at the provider the next sign-in changes the role."""

import re
from urllib.parse import urlparse

import pytest

from inventory.models import AuditEntry
from operations.models import SsoIdentity
from tests.e2e.conftest import DESKTOP, TIMEOUT_MS

pytestmark = pytest.mark.browser


@pytest.fixture
def sso_page(browser, live_server, sso, request):
    """A page that may reach the portal and the provider, and nothing else."""
    allowed = {urlparse(live_server.url).netloc, urlparse(sso.issuer).netloc}
    offsite = []
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)

    def only_portal_and_provider(route):
        if urlparse(route.request.url).netloc in allowed:
            route.continue_()
            return
        # The provider's development pages ask for a web font; only the portal's own pages must stay on-site.
        if urlparse(route.request.headers.get("referer", "")).netloc != urlparse(sso.issuer).netloc:
            offsite.append(route.request.url)
        route.abort()

    context.route("**/*", only_portal_and_provider)
    page = context.new_page()
    yield page
    context.close()
    assert not offsite, f"the journey requested other hosts: {offsite}"


def _sign_in_through_the_provider(page, login: str):
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    expect(page.locator("input[name=login]")).to_be_visible()  # the provider's own sign-in page
    assert page.url.startswith("http://127.0.0.1:")
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password: the test provider accepts it")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_load_state()
    if page.get_by_role("button", name="Continue").count():  # consent, asked the first time only
        page.get_by_role("button", name="Continue").click()
    expect(page.locator(".who")).to_contain_text(login)


def test_first_sign_in_creates_the_user_and_a_claim_change_changes_the_role(sso_page, sso, django_user_model):
    from playwright.sync_api import expect

    page = sso_page
    sso.set_account("ada", preferred_username="ada", email="ada@example.test", given_name="Ada", groups=["security"])

    _sign_in_through_the_provider(page, "ada")
    expect(page.locator(".who")).to_contain_text("ada · security")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Review queue")).to_be_visible()
    ada = django_user_model.objects.get(username="ada")
    assert (ada.email, ada.first_name, ada.has_usable_password()) == ("ada@example.test", "Ada", False)
    assert set(ada.groups.values_list("name", flat=True)) == {"security"}
    assert SsoIdentity.objects.get(user=ada).issuer == sso.issuer
    assert list(AuditEntry.objects.filter(object_id=str(ada.pk)).values_list("action", flat=True).order_by("id")) == [
        "user.created_by_sso",
        "user.roles_from_sso",
    ]

    # Sign-out ends the provider's session too: the provider asks to confirm, then sends the browser back.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: url.startswith(sso.issuer))
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))

    # At the provider, ada moves from security to manager; the next sign-in (asked for the password again, since the
    # provider's session ended) carries the new claim.
    sso.set_account("ada", preferred_username="ada", email="ada@example.test", given_name="Ada", groups=["manager"])
    _sign_in_through_the_provider(page, "ada")
    expect(page.locator(".who")).to_contain_text("ada · manager")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Review queue")).to_have_count(0)
    assert set(ada.groups.values_list("name", flat=True)) == {"manager"}
    assert django_user_model.objects.filter(username="ada").count() == 1
    change = AuditEntry.objects.filter(action="user.roles_from_sso").order_by("-id").first()
    assert (change.before, change.after) == ({"roles": ["security"]}, {"roles": ["manager"]})
