"""Page helpers shared by the browser journeys.

Playwright is imported lazily so that, without it, browser tests are skipped by the root conftest (or failed under
NHI_REQUIRE_SERVICES=1) instead of breaking collection.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request


def expect(*args, **kwargs):
    from playwright.sync_api import expect

    return expect(*args, **kwargs)


def swap_results(page: Page, action: Callable[[], object], target: str = "#results") -> Request:
    """Run `action` and wait until htmx has replaced `target` in place: same document, new element, no request left.

    Marks the current element and the window first, so a full page load (which would also show fresh results)
    cannot pass for an htmx swap.
    """
    page.evaluate("target => { window.__samePage = true; document.querySelector(target).dataset.stale = '1'; }", target)
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true") as info:
        action()
    expect(page.locator(f"{target}[data-stale]")).to_have_count(0)
    expect(page.locator(target)).to_have_count(1)
    expect(page.locator(".htmx-request")).to_have_count(0)
    assert page.evaluate("window.__samePage === true"), "the page reloaded instead of swapping the results"
    return info.value


def query_has(**params: str) -> re.Pattern:
    """A URL pattern that requires each name=value in the query string, in any order."""
    lookaheads = "".join(rf"(?=.*[?&]{re.escape(k)}={re.escape(v)}(&|$))" for k, v in params.items())
    return re.compile(rf"^{lookaheads}.*$")


def axe_serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now (axe-playwright-python ships axe-core: no
    download at test time), one line each: rule, help text, how many nodes, the first node."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
