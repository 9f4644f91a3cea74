"""Walk-around found in review, now refused: An owner's risk-lowering change is 'held' as an unreviewed FactChange,
yet the lowered value is what the policy uses at once: filing (auto-approval) and authorize both read it before
security has confirmed anything."""

import pytest

from approvals import services
from approvals.choices import RequestStatus
from approvals.models import PolicySettings
from inventory.models import FactChange
from tests.factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db

BODY = {"tool": "helpdesk", "identity": "svc-helpdesk", "on_behalf_of": "alice", "scope": "kb:read"}


def test_unreviewed_prod_to_dev_gets_access_with_no_human(api_as, owner, tool, identity, file_request, auto_approve_on):
    alice = UserFactory(username="alice")
    tool.allowed_users.add(alice)
    CredentialFactory(identity=identity)
    tool.environment = "prod"
    tool.save()
    # The owner self-attests dev; it is held for review...
    assert api_as("owner").patch(f"/api/v1/tools/{tool.pk}/", {"environment": "dev"}, format="json").status_code == 200
    assert FactChange.objects.filter(reviewed_at__isnull=True).count() == 1
    # ...but the policy already reads the unreviewed value: a prod tool's request is approved by nobody.
    tool.refresh_from_db()
    request = file_request("read", duration_days=7)
    answer = api_as("gateway").post("/api/v1/authorize/", BODY, format="json").json()
    assert request.status == RequestStatus.PENDING and answer["decision"] == "deny", (request.status, answer)


def test_unreviewed_lowering_halves_the_two_person_rule(api_as, owner, tool, identity, file_request, security):
    alice = UserFactory(username="alice")
    tool.allowed_users.add(alice)
    CredentialFactory(identity=identity)
    tool.environment, tool.data_classification = "prod", "restricted"
    tool.save()
    body = {"environment": "dev", "data_classification": "internal"}
    assert api_as("owner").patch(f"/api/v1/tools/{tool.pk}/", body, format="json").status_code == 200
    tool.refresh_from_db()
    request = file_request("read")
    assert request.required_approvals == 2, "a prod/restricted tool needs two approvers until security confirms"


def test_switching_auto_approval_off_does_not_stop_policy_grants(api_as, tool, identity, file_request, security):
    alice = UserFactory(username="alice")
    tool.allowed_users.add(alice)
    CredentialFactory(identity=identity)
    PolicySettings.objects.create(auto_approve_low_risk=True, auto_approve_max_days=7)
    request = file_request("read", duration_days=7)
    assert request.status == RequestStatus.APPROVED
    services.policy_settings_update(actor=security, auto_approve_low_risk=False, auto_approve_max_days=7)
    answer = api_as("gateway").post("/api/v1/authorize/", BODY, format="json").json()
    # What auto-approval approved is withdrawn with it: the grant waits for a person's approval.
    assert (answer["decision"], answer["reason"]) == ("deny", "grant_unapproved"), answer
