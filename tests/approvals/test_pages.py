"""Approvals pages: the request form with its dependent select, the review queue's in-place decisions, grants."""

import pytest
from django.urls import reverse

from approvals.models import AccessRequest
from inventory.models import ScopeGrant
from tests.factories import BindingFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

JUSTIFICATION = "The assistant drafts answers from the support knowledge base for agents."


def _form(tool, identity, scopes, **extra):
    data = {"tool": tool.pk, "identity": identity.pk, "scopes": [scopes["read"].pk], "duration_days": 14}
    return data | {"justification": JUSTIFICATION} | extra


def test_form_lists_only_my_tools(page_as, tool, identity, other_owner):
    ToolFactory(owner=other_owner, name="Not mine")
    body = page_as("owner").get(reverse("approvals:request_create")).content.decode()
    assert "Helpdesk" in body and "Not mine" not in body


def test_identity_select_follows_the_tool(page_as, tool, identity, owner, other_owner):
    other_tool = ToolFactory(owner=owner, name="Second")
    BindingFactory(tool=other_tool, identity=IdentityFactory(owner=owner, name="svc-second"))
    url = reverse("approvals:request_identity_options")
    client = page_as("owner")
    first = client.get(url, {"tool": tool.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "svc-helpdesk" in first and "svc-second" not in first
    foreign = ToolFactory(owner=other_owner)
    BindingFactory(tool=foreign, identity=IdentityFactory(owner=other_owner, name="svc-foreign"))
    assert "svc-foreign" not in client.get(url, {"tool": foreign.pk}).content.decode()
    assert client.get(url, {"tool": "abc"}).status_code == 200


def test_file_by_page_with_resource(page_as, tool, identity, scopes):
    data = _form(tool, identity, scopes, **{f"resource_{scopes['read'].pk}": "space:SUPPORT"})
    response = page_as("owner").post(reverse("approvals:request_create"), data)
    request = AccessRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == request.get_absolute_url()
    assert request.items.get().resource_constraint == "space:SUPPORT"


def test_form_errors_are_shown_and_nothing_is_filed(page_as, tool, identity, scopes):
    response = page_as("owner").post(
        reverse("approvals:request_create"), _form(tool, identity, scopes, justification="x")
    )
    assert response.status_code == 400
    assert "at least a sentence" in response.content.decode()
    assert not AccessRequest.objects.exists()


def test_detail_shows_policy_progress(page_as, file_request, security):
    request = file_request("write")
    body = page_as("owner").get(request.get_absolute_url()).content.decode()
    assert "needs 2 approvals, has 0" in body and "write_scope" in body
    assert reverse("approvals:request_approve", args=[request.pk]) not in body  # the requester gets no buttons
    assert (
        reverse("approvals:request_approve", args=[request.pk])
        in page_as("security").get(request.get_absolute_url()).content.decode()
    )


def test_queue_decides_in_place(page_as, file_request, security):
    request = file_request("read")
    queue = page_as("security").get(reverse("approvals:review_queue")).content.decode()
    assert f'id="request-{request.pk}"' in queue
    response = page_as("security").post(
        reverse("approvals:request_approve", args=[request.pk]),
        {"from": "queue", "comment": "ok"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    row = response.content.decode()
    assert row.strip().startswith(f'<tr id="request-{request.pk}"') and "Approved" in row
    assert ScopeGrant.objects.filter(status="active").count() == 1


def test_queue_is_for_security(page_as):
    for role, status in [("owner", 403), ("manager", 403), ("gateway", 403), ("security", 200)]:
        assert page_as(role).get(reverse("approvals:review_queue")).status_code == status


def test_grant_revoked_in_place(page_as, file_request, security):
    request = file_request("read")
    from approvals import services

    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    grant = ScopeGrant.objects.get()
    url = reverse("approvals:grant_revoke", args=[grant.pk])
    missing = page_as("owner").post(url, {"reason": ""}, HTTP_HX_REQUEST="true")
    assert missing.status_code == 400 and "reason" in missing.content.decode().lower()
    response = page_as("owner").post(url, {"reason": "Tool retired"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Revoked" in response.content.decode()
    assert page_as("other_owner").post(url, {"reason": "x"}).status_code == 404


def test_renew_in_one_click(page_as, file_request, security):
    from approvals import services

    request = file_request("read", duration_days=5)
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    response = page_as("owner").post(reverse("approvals:request_renew", args=[request.pk]))
    renewal = AccessRequest.objects.exclude(pk=request.pk).get()
    assert response.status_code == 302 and response["Location"] == renewal.get_absolute_url()
    assert renewal.renewal_of == request and renewal.status == "pending"


@pytest.mark.parametrize("name", ["approvals:request_list", "approvals:grant_list", "approvals:policy"])
@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("owner", 200), ("other_owner", 200), ("security", 200), ("manager", 200), ("gateway", 403)],
)
def test_read_pages_by_role(page_as, name, role, status):
    assert page_as(role).get(reverse(name)).status_code == status


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize("name", ["approvals:request_list", "approvals:review_queue", "approvals:grant_list"])
def test_page_query_counts_constant(
    page_as, file_request, identity, tool, security, rows, name, django_assert_max_num_queries
):
    from approvals import services

    for i in range(rows):
        extra = IdentityFactory(owner=identity.owner, name=f"svc-x-{i}")
        BindingFactory(tool=tool, identity=extra)
        request = file_request("read", identity=extra)
        if i % 2:
            services.request_decide(actor=security, request_id=request.pk, kind="approve")
    client = page_as("security")
    with django_assert_max_num_queries(9):
        assert client.get(reverse(name)).status_code == 200


def test_stale_queue_row_says_why(page_as, file_request, security, security2):
    from approvals import services

    request = file_request("read")
    services.request_decide(actor=security2, request_id=request.pk, kind="approve")
    response = page_as("security").post(
        reverse("approvals:request_approve", args=[request.pk]), {"from": "queue"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    row = response.content.decode()
    assert row.strip().startswith(f'<tr id="request-{request.pk}"') and "already approved" in row
