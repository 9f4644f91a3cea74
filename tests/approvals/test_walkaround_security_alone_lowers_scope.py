"""Walk-around found in review, now refused: One security user, acting alone, turns a write scope into a read scope
in the admin (audited, never reviewed) and then is the single approver of write access: the two-person rule for
write scopes is gone."""

import pytest
from django.test import Client

from approvals import services
from approvals.choices import RequestStatus
from tests.factories import CredentialFactory, UserFactory
from tests.inventory.test_admin_governance import change_url, form_data

pytestmark = pytest.mark.django_db


def test_one_security_user_lowers_scope_risk_then_approves_alone(api_as, scopes, tool, identity, file_request):
    sec = UserFactory(username="root", is_staff=True, is_superuser=True)
    alice = UserFactory(username="alice")
    tool.allowed_users.add(alice)
    CredentialFactory(identity=identity)
    write = scopes["write"]
    client = Client()
    client.force_login(sec)
    url = change_url(write)
    response = client.post(url, form_data(client, url, risk="read"))
    assert response.status_code == 200 and b"never lowered in place" in response.content
    write.refresh_from_db()
    assert write.risk == "write"
    request = file_request("write")
    services.request_decide(actor=sec, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    body = {"tool": "helpdesk", "identity": "svc-helpdesk", "on_behalf_of": "alice", "scope": "tickets:write"}
    answer = api_as("gateway").post("/api/v1/authorize/", body, format="json").json()
    assert (request.status, answer["decision"]) != (RequestStatus.APPROVED, "allow"), (request.status, answer)
