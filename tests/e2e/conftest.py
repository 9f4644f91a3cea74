"""Browser journeys: one headless Chromium per session, a fresh context per test, a screenshot when a test fails.

Tests here are marked `browser`; the root conftest skips them when Chromium or playwright is missing (and fails them
under NHI_REQUIRE_SERVICES=1). Nothing here downloads a browser: Playwright drives the system Chromium.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests import services
from tests.factories import UserFactory

# Playwright's sync API keeps an asyncio loop running in this thread for as long as the session's browser lives, and
# Django refuses ORM calls from a thread with a running loop (SynchronousOnlyOperation). No test code here is async:
# the loop only carries Playwright's messages, so the guard has nothing to protect. Process-wide on purpose: once the
# browser has started, every later test in the session runs beside that loop, browser test or not.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "test-results"
PASSWORD = "correct-horse-battery-e2e"
TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]

_REPORTS = pytest.StashKey[dict]()
_OFFSITE = pytest.StashKey[list]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so fixtures can tell, at teardown, whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(node) -> bool:
    reports = node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(scope="session")
def browser():
    if not services.chromium_available():
        services.missing(f"needs Chromium at {services.CHROMIUM} and the playwright package")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=services.CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser, live_server, request):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    server = urlparse(live_server.url).netloc

    # The portal serves everything itself: a request anywhere else is a bug, and must not leave the machine.
    def only_live_server(route):
        if urlparse(route.request.url).netloc == server:
            route.continue_()
        else:
            request.node.stash.setdefault(_OFFSITE, []).append(route.request.url)
            route.abort()

    context.route("**/*", only_live_server)
    yield context
    context.close()


@pytest.fixture
def page(context, request):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    if _failed(request.node):
        RESULTS_DIR.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        try:
            page.screenshot(path=RESULTS_DIR / f"{name}.png", full_page=True)
            (RESULTS_DIR / f"{name}.html").write_text(page.content())
        except Exception as error:  # a crashed page must not hide the test's own failure
            print(f"could not save failure screenshot: {error}")
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    offsite = request.node.stash.get(_OFFSITE, [])
    assert not offsite, f"the page requested other hosts: {offsite}"


@pytest.fixture
def make_user(transactional_db):
    """A user who signs in with PASSWORD. Role groups are created on demand by the factory (no migrations here)."""

    def make(username: str, *, roles: tuple[str, ...] = ()):
        return UserFactory(username=username, password=PASSWORD, roles=list(roles))

    return make


@pytest.fixture
def sign_in():
    """Sign in through the real form, starting wherever the page is (a redirect to sign-in, or the page itself)."""

    def do(page, username: str, password: str = PASSWORD):
        from playwright.sync_api import expect

        if "/accounts/login/" not in page.url:
            page.goto("/accounts/login/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".who")).to_contain_text(username)

    return do
