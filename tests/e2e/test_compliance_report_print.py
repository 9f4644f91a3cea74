"""The auditor's report in a browser and on paper (issue 15): a manager opens it from the compliance overview, reads a
failing control in the tool x control matrix, and prints it. Printed, there is no navigation, each framework starts a
page, table heads repeat, and nothing is wider than an A4 page's printable width (Letter is wider, and shorter only).
PDFs (A4 and Letter) and an A4-width screenshot go to test-results/ for a human to look at."""

import re

import pytest

from tests.e2e.conftest import RESULTS_DIR
from tests.e2e.helpers import expect
from tests.e2e.test_compliance_journey import LEAKY, estate  # noqa: F401  (three tools, scanned and snapshotted)

pytestmark = pytest.mark.browser

MM = 96 / 25.4  # CSS pixels per millimetre
# report.css: @page { margin: 16mm 14mm 18mm }. A4 is 210 mm wide, Letter 215.9 mm.
A4_PRINTABLE_PX = round((210 - 2 * 14) * MM)


def test_manager_opens_and_prints_the_report(page, estate, sign_in):  # noqa: F811
    page.goto("/compliance/")
    sign_in(page, "mgr")
    with page.expect_navigation():
        page.get_by_role("link", name="Printable report").click()
    expect(page).to_have_url(re.compile(r"/compliance/report/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("AI tool identity posture: compliance report")

    # The matrix of the OWASP NHI Top 10: the leaky tool fails NHI2, read as a word by assistive technology.
    nhi = page.locator("#framework-OWASP-NHI-2025")
    expect(nhi.get_by_role("heading", level=2)).to_contain_text("OWASP NHI Top 10 (2025)")
    matrix = nhi.locator("table.matrix")
    heads = matrix.locator("thead th.matrix-control").all_inner_texts()
    assert "NHI2" in heads, heads
    leaky = matrix.locator("tbody tr", has=page.get_by_role("rowheader", name=LEAKY))
    nhi2 = leaky.locator("td.cell").nth(heads.index("NHI2"))
    expect(nhi2).to_have_class(re.compile(r"\bps-fail\b"))
    expect(nhi2).to_have_text(re.compile(r"✗\s*fail"))
    expect(nhi.locator(".matrix-columns")).to_contain_text("Secret Leakage")
    for section in ("Summary", "Catalog versions", "Incident response: response times as evidence", "Attestations",
                    "Exceptions", "Sign-off"):  # fmt: skip
        expect(page.get_by_role("heading", level=2, name=section)).to_be_visible()
    expect(page.locator("#response-times tbody tr")).to_have_count(3)

    RESULTS_DIR.mkdir(exist_ok=True)
    nhi.scroll_into_view_if_needed()
    page.screenshot(path=RESULTS_DIR / "compliance-report-screen-1280.png")

    # On paper: no navigation, page breaks before each framework, repeated table heads.
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator(".report-toc")).to_be_hidden()
    styles = page.evaluate(
        """() => ({
            thead: getComputedStyle(document.querySelector('table.matrix thead')).display,
            framework: getComputedStyle(document.querySelector('section.framework')).breakBefore,
            signoff: getComputedStyle(document.querySelector('#sign-off')).breakInside,
            row: getComputedStyle(document.querySelector('table.matrix tbody tr')).breakInside,
        })"""
    )
    assert styles == {"thead": "table-header-group", "framework": "page", "signoff": "avoid", "row": "avoid"}, styles

    # Laid out at an A4 page's printable width, nothing sticks out.
    page.set_viewport_size({"width": A4_PRINTABLE_PX, "height": 1100})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('#report *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
        ".slice(0, 5).map(e => e.tagName + '.' + e.className)"
    )
    assert overflow <= 0 and not wide, f"the printed report is {overflow}px wider than A4: {wide}"
    # The first page and the NHI framework's page at A4 width (the whole report, with every SP 800-53 title, is too
    # tall for one image: the PDFs below hold all of it).
    page.set_viewport_size({"width": round(210 * MM), "height": round(297 * MM)})
    page.screenshot(path=RESULTS_DIR / "compliance-report-print-a4.png")
    nhi.screenshot(path=RESULTS_DIR / "compliance-report-print-a4-owasp-nhi.png")
    # The widest matrix: SP 800-53's twenty assessed controls.
    page.locator("#framework-NIST-SP-800-53r5 table.matrix").screenshot(
        path=RESULTS_DIR / "compliance-report-print-a4-sp800-53-matrix.png"
    )

    for paper in ("A4", "Letter"):
        pdf = page.pdf(format=paper, print_background=True, prefer_css_page_size=True)
        assert pdf.startswith(b"%PDF")
        (RESULTS_DIR / f"compliance-report-{paper}.pdf").write_bytes(pdf)
        # A cover and summary, a page per framework (eight), attestations, exceptions, sign-off at least.
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert pages >= 12, (paper, pages)
