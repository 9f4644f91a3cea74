"""An identity may only be granted scopes of its own provider (issue 15). The rule is the service's
(`approvals.services.request_file`), so the API, the page and a renewal all refuse a request that breaks it, with the
same field error, and nothing is filed or audited."""

import pytest
from django.urls import reverse

from approvals import services
from approvals.models import AccessRequest, RequestedScope
from inventory.models import AuditEntry
from nhi_portal.exceptions import PortalError
from tests.factories import ScopeFactory

pytestmark = pytest.mark.django_db

JUSTIFICATION = "The assistant drafts answers from the support knowledge base for agents."
MESSAGE = "svc-helpdesk is a github identity; it can only be granted github scopes, not jira:issue:write."


@pytest.fixture
def jira(db):
    return ScopeFactory(name="jira:issue:write", provider="atlassian", risk="write")


def _nothing_filed():
    return (
        not AccessRequest.objects.exists() and not RequestedScope.objects.exists() and not AuditEntry.objects.exists()
    )


def test_the_service_refuses_a_scope_of_another_provider(owner, tool, identity, scopes, jira):
    assert identity.provider == "github" and scopes["read"].provider == "github"
    with pytest.raises(PortalError) as raised:
        services.request_file(
            requester=owner, tool=tool, identity=identity, justification=JUSTIFICATION, duration_days=7,
            items=[services.ScopeItem(scopes["read"]), services.ScopeItem(jira, "project:PAY")],
        )  # fmt: skip
    assert (raised.value.field, raised.value.message) == ("scopes", MESSAGE)
    assert _nothing_filed()


def test_the_same_provider_is_filed(owner, tool, identity, scopes):
    filed = services.request_file(
        requester=owner, tool=tool, identity=identity, justification=JUSTIFICATION, duration_days=7,
        items=[services.ScopeItem(scopes["read"])],
    )  # fmt: skip
    assert filed.status == "pending" and filed.items.get().scope == scopes["read"]


@pytest.mark.parametrize("scope_ref", ["name", "id", "object"])
def test_the_api_answers_400_with_the_field_error(api_as, identity, scopes, jira, scope_ref):
    scope = {"name": "jira:issue:write", "id": jira.pk, "object": {"scope": "jira:issue:write"}}[scope_ref]
    body = {"tool": "helpdesk", "identity": "svc-helpdesk", "scopes": ["kb:read", scope],
            "justification": JUSTIFICATION, "duration_days": 7}  # fmt: skip
    response = api_as("owner").post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"scopes": [MESSAGE]}
    assert _nothing_filed()


def test_security_filing_through_the_api_meets_the_same_rule(api_as, identity, scopes, jira):
    body = {"tool": "helpdesk", "identity": "svc-helpdesk", "scopes": ["jira:issue:write"],
            "justification": JUSTIFICATION, "duration_days": 7}  # fmt: skip
    response = api_as("security").post("/api/v1/requests/", body, format="json")
    assert (response.status_code, response.json()) == (400, {"scopes": [MESSAGE]})
    assert _nothing_filed()


def test_the_page_shows_the_services_error_and_files_nothing(page_as, tool, identity, scopes, jira):
    data = {"tool": tool.pk, "identity": identity.pk, "scopes": [scopes["read"].pk, jira.pk],
            "justification": JUSTIFICATION, "duration_days": 7}  # fmt: skip
    response = page_as("owner").post(reverse("approvals:request_create"), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert MESSAGE in body
    # The form still offers the identity's provider's scopes only.
    assert f'value="{scopes["read"].pk}"' in body and f'value="{jira.pk}"' not in body
    assert _nothing_filed()


def test_a_renewal_of_a_request_that_no_longer_meets_the_rule_is_refused(owner, tool, identity, scopes, security):
    filed = services.request_file(
        requester=owner, tool=tool, identity=identity, justification=JUSTIFICATION, duration_days=7,
        items=[services.ScopeItem(scopes["read"])],
    )  # fmt: skip
    services.request_decide(actor=security, request_id=filed.pk, kind="approve")
    # The identity moved provider after the grant (re-registered): asking for the same scope again is refused.
    identity.provider = "atlassian"
    identity.save(update_fields=["provider"])
    before = AccessRequest.objects.count()
    with pytest.raises(PortalError) as raised:
        services.request_renew(requester=owner, request_id=filed.pk)
    assert raised.value.field == "scopes" and "kb:read" in raised.value.message
    assert AccessRequest.objects.count() == before


def test_the_schema_documents_the_rule_and_its_400(api_as):
    schema = api_as("owner").get("/api/schema/", {"format": "json"}).json()
    create = schema["paths"]["/api/v1/requests/"]["post"]
    assert "provider" in create["description"]
    assert "400" in create["responses"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "provider" in schema["components"]["schemas"][body]["properties"]["scopes"]["description"]


def test_a_provider_flipped_after_filing_cannot_be_approved(api_as, owner, security, tool, identity, scopes, jira):
    """Found by review: flip the identity to the scope's provider, file, flip back, and security approved a
    cross-provider grant. Approval re-checks the identity as it is now, through the API as through the service."""
    client = api_as("owner")
    assert (
        client.patch(f"/api/v1/identities/{identity.pk}/", {"provider": "atlassian"}, format="json").status_code == 200
    )
    body = {"tool": "helpdesk", "identity": "svc-helpdesk", "scopes": ["jira:issue:write"],
            "justification": JUSTIFICATION, "duration_days": 7}  # fmt: skip
    assert client.post("/api/v1/requests/", body, format="json").status_code == 201
    assert client.patch(f"/api/v1/identities/{identity.pk}/", {"provider": "github"}, format="json").status_code == 200
    request = AccessRequest.objects.get()
    answer = api_as("security").post(f"/api/v1/requests/{request.pk}/approve/", {}, format="json")
    assert answer.status_code == 400 and answer.json() == {"scopes": [MESSAGE]}
    request.refresh_from_db()
    assert request.status == "pending" and not request.decisions.exists()
    assert not identity.grants.exists()


def test_an_identity_holding_grants_keeps_its_provider(api_as, owner, security, identity, file_request):
    services.request_decide(actor=security, request_id=file_request("read").pk, kind="approve")
    assert identity.grants.filter(status="active").exists()
    for role in ("owner", "security"):
        answer = api_as(role).patch(f"/api/v1/identities/{identity.pk}/", {"provider": "atlassian"}, format="json")
        assert answer.status_code == 400 and "provider" in answer.json()
    identity.refresh_from_db()
    assert identity.provider == "github"


def test_import_keeps_the_provider_of_an_identity_holding_grants(api_as, owner, security, identity, file_request):
    services.request_decide(actor=security, request_id=file_request("read").pk, kind="approve")
    row = {"name": "svc-helpdesk", "kind": "service_account", "provider": "atlassian", "owner": "owner",
           "environment": "dev"}  # fmt: skip
    document = {"identities": [row]}
    answer = api_as("security").post("/api/v1/import/", document, format="json")
    assert answer.status_code == 200, answer.content
    identity.refresh_from_db()
    assert identity.provider == "github"
    assert "live grants" in str(answer.json())
