"""The home page by role: who may open it, what each role is asked to do, where each item leads, and its query bound."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import AccessRequest
from inventory.models import ScopeGrant
from tests.factories import CredentialFactory, IdentityFactory, ToolFactory

from .conftest import finding

pytestmark = pytest.mark.django_db

HOME = "/"
# Session, user and roles, then each to-do list (first rows and counts in one statement), subject names, the jobs
# clock and the chart: the bound the issue sets, at any size.
HOME_QUERIES = 12


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("gateway", 403), ("owner", 200), ("other_owner", 200), ("security", 200), ("manager", 200)],
)
def test_who_may_open_home(page_as, role, status):
    response = page_as(role).get(HOME)
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith(reverse("login"))


def test_the_old_overview_name_still_leads_home():
    assert reverse("inventory:dashboard") == HOME == reverse("home:home")


@pytest.mark.parametrize("rows", [5, 200])
@pytest.mark.parametrize("role", ["security", "owner", "manager"])
def test_home_queries_do_not_grow(estate, page_as, django_assert_max_num_queries, rows, role):
    estate(rows)
    client = page_as(role)
    with django_assert_max_num_queries(HOME_QUERIES):
        response = client.get(HOME)
    assert response.status_code == 200


def test_security_home_leads_with_the_oldest_critical_finding_by_name(estate, page_as):
    estate(3)
    body = page_as("security").get(HOME).content.decode()
    assert "What needs you now" in body
    # Oldest first: tool 2's critical finding was opened 12 days ago, the others later.
    first = body.index("of svc-crm-reader-2")
    assert first < body.index("of svc-crm-reader-1") < body.index("of svc-crm-reader-0")
    assert "api key …" in body  # the credential's kind and last four, never a bare id
    assert f"{reverse('inventory:finding_list')}?status=open&amp;severity=critical" in body
    assert reverse("approvals:review_queue") in body
    assert "3 in the review queue" in body or "in the review queue" in body


def test_security_home_empty_states_say_what_good_looks_like(page_as):
    body = page_as("security").get(HOME).content.decode()
    assert "No open critical or high finding. Good looks like this" in body
    assert "Nothing waits for a decision" in body
    assert "No scan has run yet." in body


def test_owner_home_offers_renew_for_a_grant_in_its_window_only(estate, page_as, users):
    estate(2)
    body = page_as("owner").get(HOME).content.decode()
    assert "Your to-do list" in body
    approved = AccessRequest.objects.filter(status="approved").get()
    assert reverse("approvals:request_renew", args=[approved.pk]) in body
    # Outside the window (more than 7 days left) the grant is not on the list, and no Renew is offered for it.
    ScopeGrant.objects.filter(issue__request=approved).update(expires_at=timezone.now() + timedelta(days=20))
    body = page_as("owner").get(HOME).content.decode()
    assert reverse("approvals:request_renew", args=[approved.pk]) not in body


def test_owner_home_shows_only_what_they_own(estate, page_as, users):
    estate(2)
    other_tool = ToolFactory(owner=users["other_owner"], name="Someone Else's Bot")
    other_identity = IdentityFactory(owner=users["other_owner"], name="svc-not-yours")
    credential = CredentialFactory(identity=other_identity, expires_at=timezone.now() + timedelta(days=1))
    finding(subject=credential, severity="critical", tool=other_tool, identity=other_identity)
    body = page_as("owner").get(HOME).content.decode()
    assert "svc-not-yours" not in body and "svc-crm-reader-0" in body
    other = page_as("other_owner").get(HOME).content.decode()
    assert "svc-not-yours" in other and "svc-crm-reader-0" not in other


def test_owner_home_empty(page_as):
    body = page_as("owner").get(HOME).content.decode()
    assert "No open finding on your tools or identities. Good looks like this" in body
    assert "Renew appears here from 7 days before a grant expires." in body


def test_manager_home_shows_pass_rate_trend_and_links_the_report(estate, page_as):
    estate(2)
    body = page_as("manager").get(HOME).content.decode()
    assert "Pass rate per framework" in body
    assert reverse("inventory:compliance_report") in body
    assert "<polyline" in body  # the trend is drawn, not "not enough snapshots"
    assert "Findings opened and resolved per week" in body and "Grants by risk" in body


def test_security_home_shows_the_response_clock(page_as, owner):
    """Time to detect, alert and contain, median and p95 over 30 days (issue 18), computed here independently."""
    from inventory.models import Finding

    now = timezone.now()
    tool = ToolFactory(owner=owner)
    timings = [(5, 9, 600), (7, 11, None), (40, 70, 3600)]  # seconds after the exposure: opened, alerted, contained
    for n, (opened, alerted, contained) in enumerate(timings):
        observed = now - timedelta(hours=n + 1)
        Finding.objects.create(
            detector="secret_in_prompt", subject_type="tool", subject_id=tool.pk + n, tool=tool, severity="critical",
            first_seen_at=observed, recorded_last_seen_at=observed, observed_at=observed,
            opened_at=observed + timedelta(seconds=opened), alerted_at=observed + timedelta(seconds=alerted),
            contained_at=None if contained is None else observed + timedelta(seconds=contained),
        )  # fmt: skip
    scanned = now - timedelta(days=2)  # opened by a scan, never observed nor contained: no measure applies
    Finding.objects.create(detector="grant_unused", subject_type="tool", subject_id=tool.pk, tool=tool,
                           severity="medium", first_seen_at=scanned, recorded_last_seen_at=scanned,
                           opened_at=scanned)  # fmt: skip
    body = page_as("security").get(HOME).content.decode()
    section = body[body.index('id="response-heading"') :]
    rows = [row.split("</th>", 1)[1] for row in section.split("<tr>")[2:5]]
    # Medians: detect 7 s of (5, 7, 40); alert 11 s of (9, 11, 70); contain 35 min 0 s of (600, 3600) → 2,100 s.
    assert ">7 s<" in rows[0] and ">11 s<" in rows[1] and ">35 min<" in rows[2]
    assert rows[0].rstrip().endswith('<td class="num">3</td></tr>') and '<td class="num">2</td>' in rows[2]
