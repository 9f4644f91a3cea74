"""Response pages (issue 18) from outside: the contain button on a finding, containment shown on the tool page, the
alert deliveries page and the response measures, each for every role."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.detection.alerts import alerts_queue
from inventory.detection.measures import response_measures
from inventory.models import Finding, ServiceIdentity

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding(world):
    now = timezone.now()
    return Finding.objects.create(
        detector="secret_exposed", subject_type="credential", subject_id=world["credential"].pk, tool=world["tool"],
        identity=world["identity"], severity="critical", first_seen_at=now, recorded_last_seen_at=now, opened_at=now,
        observed_at=now - timedelta(seconds=4),
    )  # fmt: skip


@pytest.mark.parametrize(("role", "button"), [("owner", True), ("security", True), ("manager", False)])
def test_the_contain_button_shows_to_those_who_may(page_as, finding, role, button):
    page = page_as(role).get(reverse("inventory:finding_detail", args=[finding.pk]))
    assert page.status_code == 200
    assert (reverse("inventory:finding_contain", args=[finding.pk]) in page.content.decode()) is button


def test_the_button_contains_and_the_tool_page_shows_it(page_as, finding, world):
    client = page_as("owner")
    response = client.post(reverse("inventory:finding_contain", args=[finding.pk]), {"reason": "Leaked in a ticket."})
    assert response.status_code == 302
    assert ServiceIdentity.objects.get(pk=world["identity"].pk).compromised_at is not None
    tool_page = client.get(reverse("inventory:tool_detail", args=[world["tool"].pk])).content.decode()
    assert f'id="contained-{world["identity"].pk}"' in tool_page and "credential_compromised" in tool_page
    detail = page_as("security").get(reverse("inventory:finding_detail", args=[finding.pk])).content.decode()
    assert reverse("inventory:finding_release", args=[finding.pk]) in detail


def test_a_blank_reason_on_the_page_changes_nothing(page_as, finding, world):
    page_as("owner").post(reverse("inventory:finding_contain", args=[finding.pk]), {"reason": "  "})
    assert ServiceIdentity.objects.get(pk=world["identity"].pk).compromised_at is None


@pytest.mark.parametrize(("role", "status"), [("other_owner", 404), ("manager", 403), ("anonymous", 302)])
def test_who_may_not_press_it(page_as, finding, world, role, status):
    response = page_as(role).post(reverse("inventory:finding_contain", args=[finding.pk]), {"reason": "x"})
    assert response.status_code == status
    assert ServiceIdentity.objects.get(pk=world["identity"].pk).compromised_at is None


@pytest.mark.parametrize(("role", "status"), [("owner", 403), ("manager", 403), ("security", 200), ("anonymous", 302)])
def test_the_deliveries_page_is_for_security(page_as, role, status):
    assert page_as(role).get(reverse("inventory:alert_deliveries")).status_code == status


def test_the_deliveries_page_has_a_fixed_query_count(page_as, finding, world, django_assert_max_num_queries):
    client = page_as("security")
    alerts_queue(opened_at=finding.opened_at)
    with django_assert_max_num_queries(12):
        few = client.get(reverse("inventory:alert_deliveries"))
    for _ in range(30):
        Finding.objects.filter(pk=finding.pk).update(opened_at=timezone.now())
        alerts_queue(opened_at=Finding.objects.get(pk=finding.pk).opened_at)
    with django_assert_max_num_queries(12):
        many = client.get(reverse("inventory:alert_deliveries"))
    assert few.status_code == many.status_code == 200 and "sec@example.test" in many.content.decode()


def test_the_measures(finding):
    now = timezone.now()
    Finding.objects.filter(pk=finding.pk).update(alerted_at=finding.observed_at + timedelta(seconds=10),
                                                 contained_at=finding.observed_at + timedelta(seconds=60))  # fmt: skip
    detect, alert, contain = response_measures(now=now)
    assert (detect.count, detect.median, detect.p95) == (1, timedelta(seconds=4), timedelta(seconds=4))
    assert alert.median == timedelta(seconds=10) and contain.median == timedelta(seconds=60)


def test_the_findings_page_shows_them_to_security(page_as, finding):
    assert 'id="response-times"' in page_as("security").get(reverse("inventory:finding_list")).content.decode()
    assert 'id="response-times"' not in page_as("owner").get(reverse("inventory:finding_list")).content.decode()


def test_median_and_p95_interpolate_as_percentile_cont(world):
    now = timezone.now()
    Finding.objects.bulk_create(
        Finding(detector="secret_exposed", subject_type="credential", subject_id=10_000 + n, severity="critical",
                first_seen_at=now, recorded_last_seen_at=now, opened_at=now, observed_at=now - timedelta(seconds=n))
        for n in range(1, 21)
    )  # fmt: skip
    detect = response_measures()[0]
    assert detect.count == 20
    assert detect.median == timedelta(seconds=10.5) and detect.p95 == timedelta(seconds=19.05)
