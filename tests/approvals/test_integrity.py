"""Issue 11 from the outside: an owner cannot dodge the approval, import cannot grant, revocation is final, a stale
request cannot be approved, and a revoked grant is not renewed in one click. Each test reproduces a walk-around."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from approvals import services
from approvals.choices import RequestStatus
from approvals.models import AccessRequest, PolicySettings
from inventory.models import Credential, ScopeGrant
from nhi_portal.exceptions import Conflict, PortalError
from tests.factories import CredentialFactory, GrantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(tool):
    user = UserFactory(username="alice")
    tool.allowed_users.add(user)
    return user


@pytest.fixture
def live_credential(identity):
    return CredentialFactory(identity=identity)


def _ask(client, scope: str, **extra) -> dict:
    body = {"tool": "helpdesk", "identity": "svc-helpdesk", "on_behalf_of": "alice", "scope": scope} | extra
    response = client.post("/api/v1/authorize/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _approve(request, *approvers):
    for approver in approvers:
        services.request_decide(actor=approver, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    return request


def test_lowering_the_tool_for_one_approval_then_raising_it_stops_the_grant(
    api_as, file_request, tool, security, alice, live_credential
):
    """Reproduced: lower a tool to dev/internal, get one approval, raise it back to prod/restricted: the grant kept
    working although two approvers were required."""
    request = _approve(file_request("read"), security)
    assert request.status == RequestStatus.APPROVED and request.required_approvals == 1
    assert _ask(api_as("gateway"), "kb:read")["decision"] == "allow"
    tool.environment, tool.data_classification = "prod", "restricted"
    tool.save()
    answer = _ask(api_as("gateway"), "kb:read")
    assert (answer["decision"], answer["reason"]) == ("deny", "grant_below_policy")


def test_a_second_approval_after_the_move_satisfies_the_policy_again(
    api_as, file_request, tool, security, security2, alice, live_credential
):
    request = _approve(file_request("read"), security)
    tool.environment, tool.data_classification = "prod", "restricted"
    tool.save()
    assert _ask(api_as("gateway"), "kb:read")["reason"] == "grant_below_policy"
    # Re-approval: a renewal filed now needs two approvers, and its grant supersedes the old one.
    renewal = services.request_renew(requester=request.requester, request_id=request.pk)
    assert renewal.required_approvals == 2
    _approve(renewal, security, security2)
    assert _ask(api_as("gateway"), "kb:read")["decision"] == "allow"


def test_auto_approval_does_not_survive_a_move_to_production(api_as, file_request, tool, alice, live_credential):
    PolicySettings.objects.create(auto_approve_low_risk=True, auto_approve_max_days=7)
    request = file_request("read", duration_days=7)
    assert request.status == RequestStatus.APPROVED
    grant = ScopeGrant.objects.get(issue__request=request)
    assert (grant.approvals, grant.approved_by_policy) == (0, True)
    assert _ask(api_as("gateway"), "kb:read")["decision"] == "allow"
    tool.environment = "prod"
    tool.save()
    assert _ask(api_as("gateway"), "kb:read")["reason"] == "grant_below_policy"


def test_issued_grants_record_their_approvals(file_request, security, security2):
    request = _approve(file_request("write"), security, security2)
    assert list(ScopeGrant.objects.filter(issue__request=request).values_list("approvals", "approved_by_policy")) == [
        (2, False)
    ]


def test_an_imported_admin_grant_does_not_authorize(api_as, tool, identity, alice, live_credential):
    """Reproduced: one security user imported an active aws:iam:admin grant and authorize allowed it."""
    document = {
        "scopes": [{"name": "aws:iam:admin", "provider": "aws", "risk": "admin"}],
        "grants": [{"identity": "svc-helpdesk", "scope": "aws:iam:admin", "tool": "helpdesk", "status": "active"}],
    }
    assert api_as("security").post("/api/v1/import/", document, format="json").status_code in (200, 201)
    grant = ScopeGrant.objects.get(scope__name="aws:iam:admin")
    assert grant.status == "active" and grant.approvals == 0
    answer = _ask(api_as("gateway"), "aws:iam:admin")
    assert (answer["decision"], answer["reason"]) == ("deny", "grant_unapproved")


def test_the_unapproved_detector_reports_imported_and_below_policy_grants(file_request, tool, identity, security):
    from approvals.detectors import DETECTOR
    from inventory.detection.registry import Context, thresholds

    imported = GrantFactory(identity=identity, tool=tool, approvals=0)
    _approve(file_request("read"), security)
    approved = ScopeGrant.objects.get(scope__name="kb:read")

    def flagged():
        context = Context(now=timezone.now(), thresholds=thresholds())
        return {row["s_id"] for qs in DETECTOR.querysets(context) for row in qs}

    assert imported.pk in flagged() and approved.pk not in flagged()
    tool.environment, tool.data_classification = "prod", "restricted"
    tool.save()
    assert approved.pk in flagged()


def test_deciding_past_the_pending_window_is_409(file_request, security):
    request = file_request("read")
    AccessRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(days=15))
    with pytest.raises(Conflict, match="expired"):
        services.request_decide(actor=security, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING and not request.decisions.exists()


def test_deciding_past_the_pending_window_by_api_is_409(api_as, file_request):
    request = file_request("read")
    AccessRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(days=15))
    response = api_as("security").post(f"/api/v1/requests/{request.pk}/approve/", {}, format="json")
    assert response.status_code == 409 and "expired" in response.content.decode()


def test_a_revoked_grant_is_not_renewed_in_one_click(file_request, owner, security):
    request = _approve(file_request("read"), security)
    grant = ScopeGrant.objects.get(issue__request=request)
    services.grant_revoke(actor=security, grant_id=grant.pk, reason="Leaked in a public gist")
    with pytest.raises(Conflict, match="Leaked in a public gist"):
        services.request_renew(requester=owner, request_id=request.pk)
    assert AccessRequest.objects.filter(renewal_of=request).count() == 0


def test_a_resource_pattern_must_be_canonical(file_request):
    with pytest.raises(PortalError, match="plain text"):
        file_request("read", resource="bucket/%2e%2e/*")


# Revocation is final in the database too: a writer that skips the services (a shell, a script, the admin) is refused.


def _grant_revoked(identity):
    return GrantFactory(identity=identity, status="revoked", revoked_at=timezone.now(), revoke_reason="test")


@pytest.mark.parametrize(
    "change",
    [
        {"status": "active"},
        {"status": "expired"},
        {"revoked_at": None},
    ],
)
def test_database_refuses_to_unrevoke_a_grant(identity, change):
    grant = _grant_revoked(identity)
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        ScopeGrant.objects.filter(pk=grant.pk).update(**change)
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.revoked_at is not None


def test_database_refuses_to_unrevoke_a_credential(identity):
    credential = CredentialFactory(identity=identity, revoked_at=timezone.now())
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        Credential.objects.filter(pk=credential.pk).update(revoked_at=None)
    assert Credential.objects.get(pk=credential.pk).revoked_at is not None


def test_other_changes_to_revoked_rows_still_work(identity):
    grant = _grant_revoked(identity)
    ScopeGrant.objects.filter(pk=grant.pk).update(last_used_at=timezone.now())
    credential = CredentialFactory(identity=identity, revoked_at=timezone.now())
    Credential.objects.filter(pk=credential.pk).update(storage="env")


def test_security_cannot_unrevoke_a_credential_through_the_api(api_as, identity):
    credential = CredentialFactory(identity=identity, revoked_at=timezone.now())
    response = api_as("security").patch(f"/api/v1/credentials/{credential.pk}/", {"revoked_at": None}, format="json")
    assert response.status_code == 400
    assert Credential.objects.get(pk=credential.pk).revoked_at is not None


def test_triggers_exist_on_this_database():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE '%%revocation_final'")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%revocation_final'")
        assert len(cursor.fetchall()) == 2
