"""The requests and grants API per API.md: natural keys in, clear 400/409 out, nothing changed on error."""

import pytest

from approvals.models import AccessRequest
from inventory.models import AuditEntry, ScopeGrant

pytestmark = pytest.mark.django_db

JUSTIFICATION = "The assistant drafts answers from the support knowledge base for agents."


def _body(**overrides):
    body = {
        "tool": "helpdesk",
        "identity": "svc-helpdesk",
        "scopes": ["kb:read", {"scope": "tickets:write", "resource_constraint": "queue:tier1"}],
        "justification": JUSTIFICATION,
        "duration_days": 14,
    }
    return body | overrides


def test_file_by_natural_keys(api_as, identity, scopes):
    response = api_as("owner").post("/api/v1/requests/", _body())
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "pending" and data["required_approvals"] == 2 and data["approvals"] == 0
    assert {i["scope"]: i["resource_constraint"] for i in data["items"]} == {
        "kb:read": "",
        "tickets:write": "queue:tier1",
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tool": "no-such-tool"}, "tool"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["no:such:scope"]}, "scopes"),
        ({"justification": "pls"}, "justification"),
        ({"duration_days": 31}, "duration_days"),
        ({"duration_days": "soon"}, "duration_days"),
        ({"identity": 987654}, "identity"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(api_as, identity, scopes, overrides, field):
    response = api_as("owner").post("/api/v1/requests/", _body(**overrides))
    assert response.status_code == 400
    assert field in response.json()
    assert AccessRequest.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_other_owner_cannot_file_for_my_tool(api_as, identity, scopes):
    response = api_as("other_owner").post("/api/v1/requests/", _body())
    assert response.status_code == 400
    assert response.json()["tool"] == ["No AI tool with that id or slug that you can use."]


def test_approve_issues_grants_visible_in_grants_api(api_as, identity, scopes, security2):
    request_id = api_as("owner").post("/api/v1/requests/", _body(scopes=["kb:read"])).json()["id"]
    approved = api_as("security").post(f"/api/v1/requests/{request_id}/approve/", {"comment": "fine"})
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert approved.json()["decisions"][0]["approver"] == "sec"
    grants = api_as("owner").get("/api/v1/grants/").json()["results"]
    assert len(grants) == 1 and grants[0]["request"] == request_id and grants[0]["status"] == "active"


def test_revoke_by_api(api_as, identity, scopes):
    request_id = api_as("owner").post("/api/v1/requests/", _body(scopes=["kb:read"])).json()["id"]
    api_as("security").post(f"/api/v1/requests/{request_id}/approve/")
    grant = ScopeGrant.objects.get()
    assert api_as("other_owner").post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}).status_code == 404
    assert api_as("manager").post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}).status_code == 403
    assert api_as("owner").post(f"/api/v1/grants/{grant.pk}/revoke/", {}).status_code == 400
    response = api_as("owner").post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "Not needed any more"})
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert api_as("security").post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "again"}).status_code == 409


def test_requests_are_scoped(api_as, identity, scopes):
    api_as("owner").post("/api/v1/requests/", _body(scopes=["kb:read"]))
    assert api_as("owner").get("/api/v1/requests/").json()["count"] == 1
    assert api_as("other_owner").get("/api/v1/requests/").json()["count"] == 0
    assert api_as("manager").get("/api/v1/requests/").json()["count"] == 1
    assert api_as("gateway").get("/api/v1/requests/").status_code == 403
    assert api_as("anonymous").get("/api/v1/requests/").status_code == 401


@pytest.mark.parametrize("rows", [3, 40])
def test_request_list_query_count_is_constant(api_as, identity, scopes, rows, django_assert_max_num_queries):
    from tests.factories import BindingFactory, IdentityFactory

    client = api_as("owner")
    for i in range(rows):
        extra = IdentityFactory(owner=identity.owner, name=f"svc-extra-{i}")
        BindingFactory(tool=identity.tools.get(), identity=extra)
        assert client.post("/api/v1/requests/", _body(identity=extra.name, scopes=["kb:read"])).status_code == 201
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/requests/?page_size=100").json()["count"] == rows
