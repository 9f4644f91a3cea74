"""Separation of duties from the outside: every role by approve / deny / cancel, by page and by API."""

import pytest
from django.contrib import admin
from django.urls import reverse

from approvals.models import AccessRequest, Decision

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "requester", "other_owner", "security", "manager", "gateway")


def _expect(table):
    return [pytest.param(role, table[role], id=role) for role in ROLES]


@pytest.fixture
def clients(api_as, page_as):
    def api(role):
        return api_as("owner" if role == "requester" else role)

    def page(role):
        return page_as("owner" if role == "requester" else role)

    return api, page


DECIDE_API = {"anonymous": 401, "requester": 403, "other_owner": 404, "security": 200, "manager": 403, "gateway": 403}
CANCEL_API = {"anonymous": 401, "requester": 200, "other_owner": 404, "security": 403, "manager": 403, "gateway": 403}
DECIDE_PAGE = {"anonymous": 302, "requester": 403, "other_owner": 404, "security": 302, "manager": 403, "gateway": 403}
CANCEL_PAGE = {"anonymous": 302, "requester": 302, "other_owner": 404, "security": 403, "manager": 403, "gateway": 403}


@pytest.mark.parametrize("action", ["approve", "deny"])
@pytest.mark.parametrize(("role", "status"), _expect(DECIDE_API))
def test_decide_by_api(clients, file_request, action, role, status):
    request = file_request("read")
    response = clients[0](role).post(f"/api/v1/requests/{request.pk}/{action}/", {"comment": "x"})
    assert response.status_code == status
    assert Decision.objects.filter(request=request).count() == (1 if status == 200 else 0)


@pytest.mark.parametrize(("role", "status"), _expect(CANCEL_API))
def test_cancel_by_api(clients, file_request, role, status):
    request = file_request("read")
    assert clients[0](role).post(f"/api/v1/requests/{request.pk}/cancel/").status_code == status
    request.refresh_from_db()
    assert (request.status == "cancelled") is (status == 200)


@pytest.mark.parametrize("action", ["approve", "deny"])
@pytest.mark.parametrize(("role", "status"), _expect(DECIDE_PAGE))
def test_decide_by_page(clients, file_request, action, role, status):
    request = file_request("read")
    response = clients[1](role).post(reverse(f"approvals:request_{action}", args=[request.pk]), {"comment": "x"})
    assert response.status_code == status
    decided = Decision.objects.filter(request=request).exists()
    assert decided is (role == "security")
    if role == "security":
        assert response["Location"] == request.get_absolute_url()


@pytest.mark.parametrize(("role", "status"), _expect(CANCEL_PAGE))
def test_cancel_by_page(clients, file_request, role, status):
    request = file_request("read")
    response = clients[1](role).post(reverse("approvals:request_cancel", args=[request.pk]))
    assert response.status_code == status
    request.refresh_from_db()
    assert (request.status == "cancelled") is (role == "requester")


def test_security_cannot_approve_own_request_anywhere(security, api_as, page_as, scopes, admin_client):
    from approvals import services
    from tests.factories import IdentityFactory, ToolFactory

    tool = ToolFactory(owner=security, environment="dev")
    identity = IdentityFactory(owner=security)
    tool.bindings.create(identity=identity)
    request = services.request_file(
        requester=security, tool=tool, identity=identity, items=[services.ScopeItem(scopes["read"])],
        justification="Security's own assistant reads the knowledge base.", duration_days=5,
    )  # fmt: skip
    assert api_as("security").post(f"/api/v1/requests/{request.pk}/approve/").status_code == 403
    assert page_as("security").post(reverse("approvals:request_approve", args=[request.pk])).status_code == 403
    # The admin offers no way to add or change a decision or a request.
    change = reverse("admin:approvals_accessrequest_change", args=[request.pk])
    assert admin_client.post(change, {"status": "approved"}).status_code == 403
    assert AccessRequest.objects.get(pk=request.pk).status == "pending"
    assert not admin.site.is_registered(Decision)
    assert not Decision.objects.exists()


def test_same_approver_twice_by_api_is_409(api_as, file_request, security):
    request = file_request("write")
    client = api_as("security")
    assert client.post(f"/api/v1/requests/{request.pk}/approve/").status_code == 200
    second = client.post(f"/api/v1/requests/{request.pk}/approve/")
    assert second.status_code == 409
    assert "already decided" in second.json()["detail"][0]


def test_late_decision_is_409(api_as, file_request, security2):
    request = file_request("read")
    assert api_as("security").post(f"/api/v1/requests/{request.pk}/approve/").status_code == 200
    from rest_framework.test import APIClient

    other = APIClient()
    other.force_authenticate(security2)
    for action in ("approve", "deny"):
        response = other.post(f"/api/v1/requests/{request.pk}/{action}/")
        assert response.status_code == 409
        assert response.json() == {"detail": ["This request is already approved."]}
