"""Findings and scans from the outside: every role, pages and API; owners see findings on what they own."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory import selectors
from inventory.detection.scan import scan_create, scan_run
from inventory.models import Finding, Scan
from tests.factories import BindingFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "owner", "other_owner", "security", "manager", "gateway")


def _expect(table):
    return [pytest.param(role, table[role], id=role) for role in ROLES]


@pytest.fixture
def finding(owner):
    tool = ToolFactory(owner=owner, slug="owned")
    identity = IdentityFactory(owner=owner, interactive_use_seen=True)
    BindingFactory(tool=tool, identity=identity)
    scan_run(scan_create(detectors=["identity_human_use"]).pk)
    return Finding.objects.get()


READ = {"anonymous": 401, "owner": 200, "other_owner": 404, "security": 200, "manager": 200, "gateway": 403}
TRIAGE = {"anonymous": 401, "owner": 403, "other_owner": 403, "security": 200, "manager": 403, "gateway": 403}


@pytest.mark.parametrize(("role", "status"), _expect(READ))
def test_finding_detail_api(api_as, finding, role, status):
    response = api_as(role).get(f"/api/v1/findings/{finding.pk}/")
    assert response.status_code == status
    if status == 200:
        body = response.json()
        assert body["detector"] == "identity_human_use" and "OWASP-NHI-2025:NHI10" in body["controls"]
        assert body["tool"] == "owned"


def test_finding_lists_are_scoped(api_as, finding):
    assert api_as("owner").get("/api/v1/findings/").json()["count"] == 1
    assert api_as("other_owner").get("/api/v1/findings/").json()["count"] == 0
    assert api_as("manager").get("/api/v1/findings/?detector=identity_human_use").json()["count"] == 1


@pytest.mark.parametrize(("role", "status"), _expect(TRIAGE))
def test_acknowledge_api(api_as, finding, role, status):
    assert api_as(role).post(f"/api/v1/findings/{finding.pk}/acknowledge/").status_code == status
    finding.refresh_from_db()
    assert (finding.status == "acknowledged") is (status == 200)


def test_suppress_api_validates(api_as, finding):
    client = api_as("security")
    assert client.post(f"/api/v1/findings/{finding.pk}/suppress/", {"reason": "x"}).status_code == 400
    past = (timezone.now() - timedelta(days=1)).isoformat()
    assert client.post(f"/api/v1/findings/{finding.pk}/suppress/", {"reason": "x", "until": past}).status_code == 400
    until = (timezone.now() + timedelta(days=10)).isoformat()
    response = client.post(f"/api/v1/findings/{finding.pk}/suppress/", {"reason": "accepted risk", "until": until})
    assert response.status_code == 200 and response.json()["status"] == "suppressed"


@pytest.mark.parametrize(
    ("role", "status"),
    _expect({"anonymous": 401, "owner": 403, "other_owner": 403, "security": 202, "manager": 403, "gateway": 403}),
)
def test_queue_scan_api(api_as, role, status, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = api_as(role).post("/api/v1/scans/", {})
    assert response.status_code == status
    if status == 202:
        assert response.json()["status"] == "queued"
        assert api_as("security").get(f"/api/v1/scans/{response.json()['id']}/").status_code == 200


def test_unknown_detector_is_400(api_as):
    assert api_as("security").post("/api/v1/scans/", {"detectors": ["nope"]}, format="json").status_code == 400
    assert not Scan.objects.exists()


PAGE_READ = {"anonymous": 302, "owner": 200, "other_owner": 200, "security": 200, "manager": 200, "gateway": 403}


@pytest.mark.parametrize(("role", "status"), _expect(PAGE_READ))
def test_finding_list_page(page_as, finding, role, status):
    response = page_as(role).get(reverse("inventory:finding_list"))
    assert response.status_code == status
    if role == "other_owner":
        assert f'id="finding-{finding.pk}"' not in response.content.decode()
    if role in ("owner", "security", "manager"):
        assert f'id="finding-{finding.pk}"' in response.content.decode()


@pytest.mark.parametrize(("role", "status"), _expect(READ | {"anonymous": 302}))
def test_finding_detail_page(page_as, finding, role, status):
    response = page_as(role).get(reverse("inventory:finding_detail", args=[finding.pk]))
    assert response.status_code == status
    if status == 200:
        assert "Why this matters" in response.content.decode()


@pytest.mark.parametrize(
    ("role", "status"),
    _expect({"anonymous": 302, "owner": 403, "other_owner": 403, "security": 302, "manager": 403, "gateway": 403}),
)
def test_bulk_triage_page(page_as, finding, role, status):
    response = page_as(role).post(reverse("inventory:finding_bulk"), {"ids": [finding.pk], "action": "acknowledge"})
    assert response.status_code == status
    finding.refresh_from_db()
    assert (finding.status == "acknowledged") is (role == "security")


def test_run_scan_now_shows_progress(page_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = page_as("security").post(reverse("inventory:scan_start"), HTTP_HX_REQUEST="true")
    scan = Scan.objects.get()
    assert response.status_code == 200 and 'hx-trigger="every 2s"' in response.content.decode()
    scan_run(scan.pk)
    done = page_as("security").get(reverse("inventory:scan_progress", args=[scan.pk])).content.decode()
    assert "done" in done and "every 2s" not in done
    assert page_as("owner").post(reverse("inventory:scan_start")).status_code == 403


def test_findings_show_on_tool_and_identity_pages(page_as, finding):
    tool_page = page_as("owner").get(finding.tool.get_absolute_url()).content.decode()
    identity_page = page_as("owner").get(finding.identity.get_absolute_url()).content.decode()
    assert f'id="finding-{finding.pk}"' in tool_page and f'id="finding-{finding.pk}"' in identity_page


@pytest.mark.parametrize("rows", [3, 30])
def test_finding_list_query_count(page_as, rows, owner, django_assert_max_num_queries):
    IdentityFactory.create_batch(rows, owner=owner, interactive_use_seen=True, third_party=True)
    scan_run(scan_create().pk)
    client = page_as("security")
    with django_assert_max_num_queries(9):
        assert client.get(reverse("inventory:finding_list")).status_code == 200
    api = page_as("security")
    with django_assert_max_num_queries(7):
        assert api.get("/api/v1/findings/?page_size=100").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/findings/", "/findings/"])
def test_finding_lists_take_the_same_queries_at_5_and_60_findings(api_as, page_as, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        scan_run(scan_create(detectors=["identity_human_use", "third_party_unreviewed"]).pk)
        client = api_as("security") if path.startswith("/api/") else page_as("security")
        client.get(path)  # once first: signing in may write (a token's last use, say) on the first request only
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured.captured_queries)

    IdentityFactory.create_batch(3, interactive_use_seen=True, third_party=True)
    few = queries()
    IdentityFactory.create_batch(30, interactive_use_seen=True, third_party=True)
    assert queries() == few


def test_finding_whose_tool_row_is_gone_still_shows(page_as, api_as):
    """Findings keep tool ids without a database constraint; a tool deleted while a scan was writing can leave one
    pointing nowhere. Its pages must still render."""
    finding = Finding.objects.create(
        detector="secret_exposed", subject_type="tool", subject_id=10**9, tool_id=10**9, severity="high",
        first_seen_at=timezone.now(), recorded_last_seen_at=timezone.now(),
    )  # fmt: skip
    assert page_as("security").get(reverse("inventory:finding_detail", args=[finding.pk])).status_code == 200
    assert api_as("security").get(f"/api/v1/findings/{finding.pk}/").json()["tool"] is None


def test_owners_see_findings_on_their_tools_identities_and_the_identities_behind_their_tools(
    owner, other_owner, security, page_as
):
    mine = ToolFactory(owner=owner, slug="mine")
    theirs_behind_mine = IdentityFactory(owner=other_owner, interactive_use_seen=True)
    BindingFactory(tool=mine, identity=theirs_behind_mine)
    my_loose_identity = IdentityFactory(owner=owner, interactive_use_seen=True)
    theirs_alone = IdentityFactory(owner=other_owner, interactive_use_seen=True)
    scan_run(scan_create(detectors=["identity_human_use"]).pk)
    seen = set(Finding.objects.visible_to(owner).values_list("identity_id", flat=True))
    assert seen == {theirs_behind_mine.pk, my_loose_identity.pk}
    assert set(Finding.objects.visible_to(other_owner).values_list("identity_id", flat=True)) == {
        theirs_behind_mine.pk, theirs_alone.pk}  # fmt: skip
    on_my_tool = selectors.findings_for_tool(user=owner, tool=mine)
    assert [f.identity_id for f in on_my_tool] == [theirs_behind_mine.pk]
    assert selectors.findings_for_tool(user=other_owner, tool=mine) == []
    assert len(selectors.findings_for_tool(user=security, tool=mine)) == 1
    assert f'id="finding-{on_my_tool[0].pk}"' in page_as("owner").get(mine.get_absolute_url()).content.decode()
