"""The audit pages, the tool's live decision panel and its integration tab."""

import pytest
from django.urls import reverse

from approvals import services
from approvals.authorization import AuthorizationQuery, authorize

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided(file_request, security, tool, identity, owner, scopes):
    tool.allowed_users.add(owner)
    request = file_request("read")
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    allowed = authorize(
        query=AuthorizationQuery(tool=tool.slug, identity=identity.name, on_behalf_of="owner", scope="kb:read"),
        source="gw",
    )
    denied = authorize(
        query=AuthorizationQuery(tool=tool.slug, identity=identity.name, on_behalf_of="owner", scope="org:admin"),
        source="gw",
    )
    assert allowed.allowed and not denied.allowed
    return request


@pytest.mark.parametrize("name", ["inventory:audit_events", "inventory:audit_changes", "inventory:audit_verify"])
@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("owner", 403), ("other_owner", 403), ("security", 200), ("manager", 403), ("gateway", 403)],
)
def test_audit_pages_are_for_security(page_as, name, role, status):
    assert page_as(role).get(reverse(name)).status_code == status


def test_event_row_links_grant_and_request(page_as, decided):
    body = page_as("security").get(reverse("inventory:audit_events")).content.decode()
    assert reverse("approvals:request_detail", args=[decided.pk]) in body
    assert "no_active_grant" in body and "allow" in body


def test_event_filters(page_as, decided):
    client = page_as("security")
    denied_only = client.get(reverse("inventory:audit_events"), {"decision": "deny"}, HTTP_HX_REQUEST="true")
    html = denied_only.content.decode()
    assert html.strip().startswith('<section id="results"') and "1 event" in html
    assert (
        "1 event"
        in client.get(reverse("inventory:audit_events"), {"human": "owner", "reason": "allowed"}).content.decode()
    )
    assert client.get(reverse("inventory:audit_events"), {"since": "not a date"}).status_code == 200


@pytest.mark.parametrize("rows", [2, 30])
def test_audit_events_query_count(page_as, decided, tool, identity, rows, django_assert_max_num_queries):
    for i in range(rows):
        authorize(
            query=AuthorizationQuery(tool=tool.slug, identity=identity.name, on_behalf_of="owner", scope="kb:read"),
            source=f"gw{i}",
        )
    client = page_as("security")
    with django_assert_max_num_queries(6):
        assert client.get(reverse("inventory:audit_events")).status_code == 200


def test_verify_button_queues_a_run_and_reports_the_chain(
    page_as, decided, celery_eager, django_capture_on_commit_callbacks
):
    """Issue 17: the button queues a background run (never re-hashing in the request); the partial shows the verdict."""
    client = page_as("security")
    assert "not verified yet" in client.get(reverse("inventory:audit_verify")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(reverse("inventory:audit_verify"), HTTP_HX_REQUEST="true")
    assert queued.status_code == 200
    assert "chain intact" in client.get(reverse("inventory:audit_verify")).content.decode()


def test_tool_page_has_live_decisions_and_integration(page_as, decided, tool):
    body = page_as("owner").get(tool.get_absolute_url()).content.decode()
    assert reverse("inventory:tool_decisions", args=[tool.pk]) in body
    assert f'"tool": "{tool.slug}"' in body and "/api/v1/authorize/" in body
    panel = page_as("owner").get(reverse("inventory:tool_decisions", args=[tool.pk]))
    assert panel.status_code == 200 and "no_active_grant" in panel.content.decode()
    assert 'hx-trigger="every 5s"' in panel.content.decode()
    assert page_as("other_owner").get(reverse("inventory:tool_decisions", args=[tool.pk])).status_code == 404
    assert page_as("gateway").get(reverse("inventory:tool_decisions", args=[tool.pk])).status_code == 403
