"""Issue 17: the audit pages page by keyset with "about N" counts, filters through indexes, and the verify API and
button queue background runs."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from inventory.audit import keyset
from inventory.models import AccessEvent, AuditEntry, AuditVerification

from .helpers import entries, events, raw, seal

pytestmark = pytest.mark.django_db


def _ids(response) -> list[int]:
    return [row.pk for row in response.context["page"]]


def test_walking_older_and_newer_covers_every_event_once(page_as):
    made = [e.pk for e in events(120)]
    client = page_as("security")
    url = reverse("inventory:audit_events")
    first = client.get(url)
    assert _ids(first) == made[::-1][:50] and first.context["page"].newer is None
    second = client.get(url, {"before": first.context["page"].older})
    third = client.get(url, {"before": second.context["page"].older})
    assert _ids(second) == made[::-1][50:100] and _ids(third) == made[::-1][100:]
    assert third.context["page"].older is None
    assert sorted(_ids(first) + _ids(second) + _ids(third)) == made
    back = client.get(url, {"after": third.context["page"].newer})
    assert _ids(back) == _ids(second)
    body = second.content.decode()
    assert f"before={second.context['page'].older}" in body and f"after={second.context['page'].newer}" in body
    assert "120 events" in body


def test_filters_with_paging_keep_the_filter(page_as):
    events(60, tool_ref="docs", decision="deny", reason="no_active_grant")
    events(10, tool_ref="other")
    client = page_as("security")
    url = reverse("inventory:audit_events")
    first = client.get(url, {"tool": "docs", "decision": "deny"})
    assert len(_ids(first)) == 50 and "60 events" in first.content.decode()
    older = client.get(url, {"tool": "docs", "decision": "deny", "before": first.context["page"].older})
    assert len(_ids(older)) == 10
    assert "tool=docs" in first.content.decode().split('rel="next"')[0].rsplit("href=", 1)[1]
    for name, value, expected in [("tool", "other", 10), ("reason", "no_active_grant", 60), ("decision", "allow", 10),
                                  ("identity", "nobody", 0), ("action", "search", 0), ("agent", "bot", 0),
                                  ("human", "nobody", 0), ("kind", "observed", 0)]:  # fmt: skip
        page = client.get(url, {name: value}).context["page"]
        assert page.about == expected, name


def test_time_range_is_the_recorded_time_through_the_id_range(page_as):
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=2)):
        old = events(3)
    with time_machine.travel(now - timedelta(hours=1)):
        recent = events(2)
    client = page_as("security")
    url = reverse("inventory:audit_events")
    since = (now - timedelta(days=1)).isoformat()
    assert _ids(client.get(url, {"since": since})) == [e.pk for e in recent][::-1]
    assert _ids(client.get(url, {"until": since})) == [e.pk for e in old][::-1]
    assert keyset.id_at(AccessEvent, "recorded_at", now - timedelta(days=1)) == recent[0].pk
    assert keyset.id_at(AccessEvent, "recorded_at", now + timedelta(days=1)) == recent[-1].pk + 1
    assert keyset.id_at(AccessEvent, "recorded_at", now - timedelta(days=9)) == old[0].pk


def test_id_at_finds_the_boundary_across_gaps():
    base = timezone.now() - timedelta(days=100)
    made = []
    for day in range(40):
        with time_machine.travel(base + timedelta(days=day)):
            made += events(1)
    # Gaps in the ids, as a sequence leaves them after rollbacks.
    raw("DELETE FROM inventory_accessevent WHERE id IN (%s, %s, %s)", [made[5].pk, made[6].pk, made[20].pk])
    for day in (0, 5, 7, 19, 20, 21, 39):
        expected = next(e.pk for e in made[day:] if e.pk not in (made[5].pk, made[6].pk, made[20].pk))
        assert keyset.id_at(AccessEvent, "recorded_at", base + timedelta(days=day)) == expected, day


def test_bad_paging_or_filter_input_never_fails(page_as):
    client = page_as("security")
    url = reverse("inventory:audit_events")
    for params in ({"before": "x"}, {"after": "-1"}, {"before": "9" * 40}, {"since": "not a date"}, {"kind": "?"}):
        assert client.get(url, params).status_code == 200
    assert client.get(reverse("inventory:audit_changes"), {"before": "abc"}).status_code == 200


@pytest.mark.parametrize("rows", [5, 200])
def test_pages_keep_a_constant_query_count(page_as, rows, django_assert_max_num_queries):
    events(rows)
    entries(rows)
    client = page_as("security")
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    with django_assert_max_num_queries(6):
        client.get(reverse("inventory:audit_events"), {"before": 10**9})
    with django_assert_max_num_queries(8):  # the time range adds its two bound probes
        client.get(reverse("inventory:audit_events"), {"since": since, "until": timezone.now().isoformat()})
    with django_assert_max_num_queries(7):  # and the object labels: one query per object type on the page
        client.get(reverse("inventory:audit_changes"), {"action": "tool."})


def test_changes_page_pages_by_keyset_with_its_prefix_filter(page_as):
    entries(55)
    AuditEntry.objects.create(actor_label="x", action="grant.revoked", object_type="t", object_id="1")
    client = page_as("security")
    first = client.get(reverse("inventory:audit_changes"), {"action": "tool."})
    assert len(_ids(first)) == 50 and "55 entries" in first.content.decode()
    assert (
        len(_ids(client.get(reverse("inventory:audit_changes"), {"action": "tool.", "before": _ids(first)[-1]}))) == 5
    )


def test_counts_beyond_the_cap_say_so(page_as, monkeypatch):
    monkeypatch.setattr(keyset, "COUNT_CAP", 10)
    events(12)
    body = page_as("security").get(reverse("inventory:audit_events"), {"tool": "docs"}).content.decode()
    assert "10+ events" in body


# The verify API -----------------------------------------------------------------------------------------------------

ROLES = [("anonymous", 401), ("owner", 403), ("other_owner", 403), ("manager", 403), ("gateway", 403)]


@pytest.mark.parametrize(("role", "status"), [*ROLES, ("security", 200)])
def test_verify_api_get_is_for_security(api_as, role, status):
    assert api_as(role).get("/api/v1/audit/verify/").status_code == status


@pytest.mark.parametrize(("role", "status"), [*ROLES, ("security", 202)])
def test_verify_api_post_is_for_security(api_as, role, status):
    assert api_as(role).post("/api/v1/audit/verify/", {}, format="json").status_code == status
    assert AuditVerification.objects.count() == (1 if status == 202 else 0)


def test_verify_api_queues_runs_and_reports_the_latest(api_as, celery_eager, django_capture_on_commit_callbacks):
    entries(3)
    seal()
    client = api_as("security")
    before = client.get("/api/v1/audit/verify/").json()
    assert before["ok"] is False and before["as_of"] is None and before["running"] is False
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post("/api/v1/audit/verify/", {"kind": "incremental"}, format="json")
    assert queued.status_code == 202
    done = client.get("/api/v1/audit/verify/").json()
    assert done["ok"] is True and done["checked"] == 3 and done["first_bad"] is None and done["kind"] == "incremental"
    assert done["as_of"] and done["running"] is False and done["run"] is None
    assert AuditEntry.objects.filter(action="audit.verification_queued").count() == 1
    assert client.post("/api/v1/audit/verify/", {"kind": "everything"}, format="json").status_code == 400
    assert AuditVerification.objects.count() == 1


def test_verify_api_get_never_rehashes(api_as, django_assert_max_num_queries):
    entries(300)
    seal()
    with django_assert_max_num_queries(4):  # the role check; the latest run, the active one, the last full one
        assert api_as("security").get("/api/v1/audit/verify/").status_code == 200
