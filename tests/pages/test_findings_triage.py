"""The findings list by risk, and triage feedback: sortable columns, changed rows kept in place with their new status,
a plain-form fallback, and a finished scan that says what it changed and asks the list to reload itself."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from inventory.models import Finding, Scan
from tests.factories import IdentityFactory, ToolFactory

from .conftest import finding

pytestmark = pytest.mark.django_db

BULK = reverse("inventory:finding_bulk")
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def three(users):
    tool = ToolFactory(owner=users["owner"], name="Helpdesk Copilot")
    identity = IdentityFactory(owner=users["owner"], name="svc-crm-reader")
    # Created in the order they were first seen, as a scan inserts them.
    medium = finding(subject=tool, severity="medium", tool=tool, days_open=90)
    old_high = finding(subject=identity, severity="high", tool=tool, identity=identity, days_open=30)
    new_critical = finding(subject=tool, severity="critical", tool=tool, days_open=1)
    return {"old_high": old_high, "new_critical": new_critical, "medium": medium}


def order_on_page(body: str, made: dict) -> list[str]:
    return sorted(made, key=lambda name: body.index(f'id="finding-{made[name].pk}"'))


def test_findings_list_leads_with_risk_then_age_and_sorts_by_column(three, page_as):
    client = page_as("security")
    assert order_on_page(client.get("/findings/").content.decode(), three) == ["new_critical", "old_high", "medium"]
    assert order_on_page(client.get("/findings/?ordering=-risk").content.decode(), three) == [
        "medium", "old_high", "new_critical"]  # fmt: skip
    assert order_on_page(client.get("/findings/?ordering=first_seen").content.decode(), three) == [
        "medium", "old_high", "new_critical"]  # fmt: skip
    # An order the page does not offer is ignored, not an error.
    response = client.get("/findings/?ordering=suppress_reason")
    assert response.status_code == 200
    assert order_on_page(response.content.decode(), three) == ["new_critical", "old_high", "medium"]
    body = client.get("/findings/").content.decode()
    assert "Helpdesk Copilot" in body and "svc-crm-reader" in body and "Most severe first" in body


def test_suppress_from_the_list_keeps_the_row_with_its_new_status(three, page_as):
    target = three["old_high"]
    until = (timezone.localdate() + timedelta(days=30)).isoformat()
    data = {"ids": [target.pk], "action": "suppress", "until": until, "reason": "Accepted until the migration"}
    response = page_as("security").post(BULK, data, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Suppressed 1 finding." in body and "Suppressd" not in body and "{#" not in body
    assert f'<tr id="finding-{target.pk}" hx-swap-oob="true">' in body
    assert "fs-suppressed" in body and f"until {until}" in body
    target.refresh_from_db()
    assert target.status == "suppressed" and target.suppress_reason == "Accepted until the migration"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "suppress", "until": "2999-01-01", "reason": ""}, "Give a reason for suppressing."),
        ({"action": "suppress", "until": "2000-01-01", "reason": "why"}, "The end date must be in the future."),
        ({"action": "delete"}, "Pick findings and an action."),
    ],
)
def test_bad_triage_input_is_a_400_that_changes_nothing(three, page_as, data, message):
    target = three["old_high"]
    response = page_as("security").post(BULK, {"ids": [target.pk], **data}, **HX)
    assert response.status_code == 400
    assert message in response.content.decode() and 'role="alert"' in response.content.decode()
    target.refresh_from_db()
    assert target.status == "open"


def test_plain_form_acknowledge_redirects_back_with_a_message(three, page_as):
    target = three["medium"]
    response = page_as("security").post(BULK, {"ids": [target.pk], "action": "acknowledge", "next": "/findings/"})
    assert response.status_code == 302 and response["Location"] == "/findings/"
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Acknowledged 1 finding."]
    target.refresh_from_db()
    assert target.status == "acknowledged"


@pytest.mark.parametrize(("role", "status"), [("anonymous", 302), ("owner", 403), ("manager", 403), ("gateway", 403)])
def test_only_security_triages(three, page_as, role, status):
    response = page_as(role).post(BULK, {"ids": [three["medium"].pk], "action": "acknowledge"}, **HX)
    assert response.status_code == status
    assert Finding.objects.get(pk=three["medium"].pk).status == "open"


def test_a_finished_scan_says_what_it_changed_and_reloads_the_list(page_as, users):
    now = timezone.now()
    scan = Scan.objects.create(
        status=Scan.Status.DONE, started_at=now, finished_at=now, total=2, progress=2,
        counts={"secret_exposed": {"opened": 3, "still_open": 1, "resolved": 2}, "grant_unused": {"opened": 1}},
    )  # fmt: skip
    response = page_as("security").get(reverse("inventory:scan_progress", args=[scan.pk]), **HX)
    assert response.status_code == 200
    assert "4 new, 2 resolved." in response.content.decode()
    assert response["HX-Trigger"] == "findings-changed"
    body = page_as("security").get("/findings/").content.decode()
    assert 'hx-trigger="findings-changed from:body"' in body
    running = Scan.objects.create(status=Scan.Status.QUEUED)
    polled = page_as("security").get(reverse("inventory:scan_progress", args=[running.pk]), **HX)
    assert "HX-Trigger" not in polled and 'hx-trigger="every 2s"' in polled.content.decode()
