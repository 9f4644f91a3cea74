import time
import pytest
from tests.factories import ToolFactory

OLD = 'hx-trigger="input changed delay:300ms from:find input[name=search], change, submit"'
FIX_A = (
    "hx-trigger=\"input changed delay:300ms from:find input[name=search], change[target.name !== 'search'], submit\""
)


@pytest.mark.browser
@pytest.mark.parametrize("fix", ["none", "A", "B"])
def test_explore(page, make_user, sign_in, live_server, fix):
    owner = make_user("owner")
    for i in range(30):
        ToolFactory(owner=owner, name=f"Tool {i:02d}", environment=["prod", "staging", "dev"][i % 3])
    log = []

    def handle(route):
        req = route.request
        if req.headers.get("hx-request") and "ordering" not in req.url:
            time.sleep(0.6)  # a slow stale response
        resp = route.fetch()
        body = resp.text()
        if fix == "A":
            body = body.replace(OLD, FIX_A)
        if fix == "B":
            body = body.replace('hx-push-url="true"\n', 'hx-push-url="true" hx-sync="this:replace"\n')
            body = body.replace('hx-target="#results"', 'hx-target="#results" hx-sync="#filters:replace"')
        route.fulfill(response=resp, body=body)

    page.on("request", lambda r: log.append(("REQ", r.url.split("?")[-1])))
    page.on("requestfailed", lambda r: log.append(("FAILED", r.url.split("?")[-1])))
    page.goto("/tools/?environment=staging")
    sign_in(page, "owner")
    page.route("**/tools/*", handle)
    page.reload()
    assert (OLD in page.content()) == (fix != "A")
    page.get_by_label("Search").fill("tool")
    page.wait_for_timeout(1500)
    log.clear()
    page.get_by_role("link", name="Name").click()
    page.wait_for_timeout(2000)
    print(fix, "after header click", log, page.url)
    log.clear()
    print(
        fix,
        "hidden:",
        page.locator("input[name=ordering]").count(),
        page.locator("th[aria-sort]").first.get_attribute("aria-sort"),
    )
