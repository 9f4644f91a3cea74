"""Browser journey through the compliance pages: a manager reads the overview, switches framework with htmx, drills
into a failing control, follows it to the tool's posture tab, and downloads the tool x control matrix as CSV.

The data is scanned and snapshotted before the browser starts, as the nightly job would have done.
"""

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import choices
from inventory.detection.scan import scan_create, scan_run
from inventory.models import AITool, Attestation, Control, Finding, Framework, FrameworkSnapshot
from inventory.posture import evaluate as posture
from inventory.posture.catalog import load_frameworks
from tests.e2e.conftest import DESKTOP, PHONE, RESULTS_DIR
from tests.e2e.helpers import expect, query_has, swap_results
from tests.factories import BindingFactory, CredentialFactory, IdentityFactory, TeamFactory, ToolFactory

pytestmark = pytest.mark.browser

NHI, CSF = "OWASP-NHI-2025", "NIST-CSF-2.0"
NHI_TITLE, CSF_TITLE = "OWASP NHI Top 10 (2025)", "NIST CSF 2.0"  # tabs name frameworks by title (issue 15)
LEAKY, CHATTY, CLEAN = "Atlas Assistant", "Beacon Bot", "Cobalt Copilot"


@dataclass
class Estate:
    leaky: AITool
    chatty: AITool
    clean: AITool
    leak: Finding  # secret_in_prompt, on the leaky tool's identity: fails NHI2 and PR.AA-01
    human_use: Finding  # identity_human_use, on the chatty tool's identity: fails NHI10
    pass_rate: str  # as the overview should print it, from the snapshot rows


@pytest.fixture
def estate(make_user) -> Estate:
    make_user("mgr", roles=("manager",))
    owner = make_user("owner")
    load_frameworks()  # idempotent; the catalog does not survive a transactional test's flush otherwise
    platform = TeamFactory(name="Platform", slug="platform")
    support = TeamFactory(name="Support", slug="support")

    def tool(name, team, environment):
        slug = name.lower().replace(" ", "-")
        return ToolFactory(
            name=name, slug=slug, owner=owner, team=team, environment=environment, enforces_authorization=True
        )

    leaky = tool(LEAKY, platform, choices.Environment.PROD)
    chatty = tool(CHATTY, support, choices.Environment.STAGING)
    clean = tool(CLEAN, platform, choices.Environment.DEV)
    in_a_month = timezone.now() + timedelta(days=30)

    # The leaky tool's key sits in its system prompt.
    svc_atlas = IdentityFactory(name="svc-atlas", owner=owner)
    BindingFactory(tool=leaky, identity=svc_atlas)
    CredentialFactory(identity=svc_atlas, storage=choices.CredentialStorage.PROMPT, expires_at=in_a_month)
    # People sign in with the chatty tool's identity.
    svc_beacon = IdentityFactory(name="svc-beacon", owner=owner, interactive_use_seen=True)
    BindingFactory(tool=chatty, identity=svc_beacon)
    CredentialFactory(identity=svc_beacon, expires_at=in_a_month)
    # The clean tool keeps its key in the vault.
    svc_cobalt = IdentityFactory(name="svc-cobalt", owner=owner)
    BindingFactory(tool=clean, identity=svc_cobalt)
    CredentialFactory(identity=svc_cobalt, expires_at=in_a_month)

    scan_run(scan_create().pk)
    posture.snapshot()

    leak = Finding.objects.get(detector="secret_in_prompt", identity=svc_atlas)
    human_use = Finding.objects.get(detector="identity_human_use", identity=svc_beacon)
    assert (leak.tool, human_use.tool) == (leaky, chatty)
    # Posture passes or fails on evidence only: the rate is over the (tool, control) results with evidence, as the
    # framework's snapshot of the day keeps it.
    pass_rate = f"{FrameworkSnapshot.objects.get(framework__key=NHI, day=timezone.localdate()).pass_rate}%"
    return Estate(leaky, chatty, clean, leak, human_use, pass_rate)


def card(page, heading: str):
    """The card section whose heading starts with `heading`."""
    return page.locator("section.card", has=page.get_by_role("heading", name=re.compile(rf"^{re.escape(heading)}")))


def worst_row(page, control_id: str):
    return card(page, "Controls failing most").locator("tr", has=page.locator("code", has_text=re.compile(
        rf"^{re.escape(control_id)}$"
    )))  # fmt: skip


def test_manager_reads_compliance_drills_down_and_exports(page, estate, sign_in):
    # Signed out, the overview sends you to sign in and back.
    page.goto("/compliance/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/compliance/$"))
    sign_in(page, "mgr")
    expect(page).to_have_url(re.compile(r"/compliance/$"))
    expect(page.locator(".who")).to_contain_text("mgr · manager")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Compliance", exact=True)).to_have_attribute("href", "/compliance/")

    # The OWASP NHI overview by default: its pass rate across the three tools, and the controls failing most.
    tabs = page.get_by_role("navigation", name="Framework")
    expect(tabs.locator("[aria-current=page]")).to_have_text(NHI_TITLE)
    expect(page.locator("#overview h2").first).to_contain_text("OWASP")
    rate = page.locator(".stat", has_text="pass, over the")
    expect(rate.locator(".num")).to_have_text(estate.pass_rate)
    expect(rate).to_contain_text("across 3 tools")
    expect(worst_row(page, "NHI2")).to_contain_text("Secret Leakage")
    expect(worst_row(page, "NHI2").locator("td.num")).to_have_text("1 / 3 tools")
    expect(worst_row(page, "NHI10")).to_contain_text("Human Use of NHI")
    expect(worst_row(page, "NHI10").locator("td.num")).to_have_text("1 / 3 tools")
    failing_rows = card(page, "Controls failing most").locator("tr")
    expect(page.locator(".stat", has_text="controls failing somewhere").locator(".num")).to_have_text(
        str(failing_rows.count())
    )
    expect(page.locator("#csv-export")).to_have_attribute("href", f"/compliance/export.csv?framework={NHI}")

    # Switch to NIST CSF 2.0 with the tab: #overview is swapped in place, the URL pushed, and PR.AA-01 (failing,
    # through the leaked key) shows its CSF 1.1 predecessor PR.AC-1.
    swap_results(page, lambda: tabs.get_by_role("link", name=CSF_TITLE).click(), target="#overview")
    expect(page).to_have_url(query_has(framework=CSF))
    expect(page).to_have_url(re.compile(r"/compliance/\?"))
    expect(tabs.locator("[aria-current=page]")).to_have_text(CSF_TITLE)
    expect(page.locator("#overview h2").first).to_contain_text("NIST Cybersecurity Framework")
    expect(page.get_by_role("heading", name="Compliance", level=1)).to_have_count(1)  # no page inside the page
    expect(worst_row(page, "PR.AA-01")).to_contain_text("CSF 1.1: PR.AC-1")
    expect(worst_row(page, "PR.AA-01").locator("td.num")).to_have_text("1 / 3 tools")
    expect(worst_row(page, "NHI2")).to_have_count(0)
    expect(page.locator("#csv-export")).to_have_attribute("href", f"/compliance/export.csv?framework={CSF}")

    # Back to OWASP by its tab, then drill into the failing NHI2.
    swap_results(page, lambda: tabs.get_by_role("link", name=NHI_TITLE).click(), target="#overview")
    expect(page).to_have_url(query_has(framework=NHI))
    nhi2 = Control.objects.get(framework__key=NHI, control_id="NHI2")
    with page.expect_navigation():
        worst_row(page, "NHI2").get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/compliance/controls/{nhi2.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("NHI2 Secret Leakage")
    expect(_fact(page, "Decided by (primary)")).to_contain_text("secret_in_prompt")
    failing = card(page, "Tools failing it").locator("tbody tr")
    expect(failing).to_have_count(1)
    expect(failing.locator("td")).to_have_text(
        [LEAKY, f"secret_in_prompt #{estate.leak.pk}", "svc-atlas", "critical", timezone.localdate().isoformat()]
    )
    for name in (CHATTY, CLEAN):
        expect(page.get_by_role("link", name=name)).to_have_count(0)

    # The tool link opens the leaky tool's posture tab, on the same framework.
    failing.get_by_role("link", name=LEAKY).click()
    expect(page).to_have_url(re.compile(rf"/tools/{estate.leaky.pk}/posture/\?framework={NHI}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Posture of {LEAKY} risk: critical")
    tool_tabs = page.get_by_role("navigation", name="Framework")
    expect(tool_tabs.locator("[aria-current=page]")).to_have_text(NHI_TITLE)
    leaked = page.locator(f"#control-{nhi2.pk}")
    expect(leaked.locator(".chip.ps-fail")).to_have_text("Fail")
    expect(leaked.get_by_role("link", name="secret_in_prompt (critical)")).to_have_attribute(
        "href", f"/findings/{estate.leak.pk}/"
    )
    nhi6 = Control.objects.get(framework__key=NHI, control_id="NHI6")
    # Controls no detector assesses are folded under one line; listing them swaps the posture in place.
    folded = page.locator("#not-assessed")
    expect(folded.locator("summary")).to_contain_text("controls no detector assesses")
    expect(page.locator(f"#control-{nhi6.pk}")).to_have_count(0)
    folded.locator("summary").click()
    swap_results(page, lambda: folded.get_by_role("link", name="List them").click(), target="#posture")
    unassessed = page.locator(f"#control-{nhi6.pk}")
    expect(unassessed).to_contain_text("Insecure Cloud Deployment Configurations")
    expect(unassessed.locator(".chip.ps-not_assessed")).to_have_text("Not assessed")

    # A manager reads and never attests: no form, no button, and a POST with a valid CSRF token is refused.
    expect(page.locator("form[action$='/attest/']")).to_have_count(0)
    expect(page.get_by_role("button", name="Attest")).to_have_count(0)
    expect(page.get_by_role("textbox")).to_have_count(0)
    token = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRFToken"]
    expires = (timezone.localdate() + timedelta(days=30)).isoformat()
    response = page.request.post(
        f"/tools/{estate.leaky.pk}/attest/",
        form={"control": str(nhi6.pk), "note": "Looks fine to me", "expires_at": expires},
        headers={"X-CSRFToken": token, "Referer": page.url},
        max_redirects=0,
    )
    assert response.status == 403, response.status
    assert not Attestation.objects.exists()

    # The nav's Compliance link brings the overview back; the CSV matrix downloads from it.
    with page.expect_navigation():
        nav.get_by_role("link", name="Compliance", exact=True).click()
    expect(page).to_have_url(re.compile(r"/compliance/$"))
    expect(tabs.locator("[aria-current=page]")).to_have_text(NHI_TITLE)
    _screenshot_overview(page)
    with page.expect_download() as info:
        page.locator("#csv-export").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"posture-{NHI}-{timezone.localdate().isoformat()}.csv"
    with open(download.path(), newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    header, body = rows[0], rows[1:]
    controls = list(
        Framework.objects.get(key=NHI)
        .controls.filter(retired_at__isnull=True)
        .order_by("order")
        .values_list("control_id", "title")
    )
    # Names beside the ids: the tool's name after its slug, each control's title after its id.
    assert header == ["tool", "tool name", "team", "environment", *[f"{cid} {title}" for cid, title in controls]]
    header = [*header[:4], *[cid for cid, _ in controls]]
    assert {"NHI2", "NHI6", "NHI10"} <= set(header)
    matrix = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert sorted(matrix) == ["atlas-assistant", "beacon-bot", "cobalt-copilot"]
    leaky = matrix["atlas-assistant"]
    assert (leaky["team"], leaky["environment"]) == ("platform", choices.Environment.PROD)
    assert (leaky["NHI2"], leaky["NHI6"], leaky["NHI10"]) == (
        "fail",
        "not_assessed: unmapped",
        "pass",
    )  # with why it is not assessed
    assert (matrix["beacon-bot"]["NHI2"], matrix["beacon-bot"]["NHI10"]) == ("pass", "fail")
    assert "fail" not in matrix["cobalt-copilot"].values()


def _fact(page, term: str):
    """The <dd> after a <dt> in the page's facts."""
    return page.locator(f"xpath=//dl[@class='facts']/dt[normalize-space()='{term}']/following-sibling::dd[1]")


def _screenshot_overview(page):
    """The overview at laptop and phone sizes, for a human to look at. The page must never scroll sideways."""
    RESULTS_DIR.mkdir(exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=RESULTS_DIR / f"compliance-overview-{size['width']}x{size['height']}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the {label} overview scrolls sideways by {overflow}px"
    page.set_viewport_size(DESKTOP)
