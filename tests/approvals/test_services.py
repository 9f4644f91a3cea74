"""Filing, deciding, cancelling, issuing, revoking and renewing, each with its audit entry."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from approvals import services
from approvals.choices import RequestStatus
from approvals.models import AccessRequest, Decision, GrantIssue
from inventory.models import AppendOnlyError, AuditEntry, ScopeGrant
from nhi_portal.exceptions import Conflict, PortalError
from tests.factories import GrantFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db


def _actions(obj) -> list[str]:
    entries = AuditEntry.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("id")
    return list(entries.values_list("action", flat=True))


def test_filing_records_policy_and_audit(file_request, owner, security):
    request = file_request("read", "write")
    assert request.status == RequestStatus.PENDING
    assert request.required_approvals == 2
    assert request.policy_rules == ["write_scope"]
    entry = AuditEntry.objects.get(action="request.filed")
    assert entry.actor == owner and entry.after["status"] == "pending"


def test_security_is_mailed_when_a_request_arrives(
    file_request, security, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = file_request("read")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [security.email]
    assert f"#{request.pk}" in mail.outbox[0].subject and "Helpdesk" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"justification": "need it"}, "justification"),
        ({"duration_days": 91}, "duration_days"),
        ({"duration_days": 0}, "duration_days"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(file_request, kwargs, field):
    with pytest.raises(PortalError) as error:
        file_request("read", **kwargs)
    assert error.value.field == field
    assert AccessRequest.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_admin_scope_duration_is_capped_shorter(file_request):
    with pytest.raises(PortalError, match="between 1 and 7 days"):
        file_request("admin", duration_days=8)
    assert file_request("admin", duration_days=7).required_approvals == 2


def test_identity_must_be_bound_to_the_tool(file_request, owner):
    loose = IdentityFactory(owner=owner)
    with pytest.raises(PortalError, match="not bound"):
        file_request("read", identity=loose)


def test_only_own_tools(file_request, other_owner, manager):
    with pytest.raises(PermissionDenied):
        file_request("read", requester=other_owner)
    with pytest.raises(PermissionDenied):
        file_request("read", requester=manager)


def test_scope_already_held_is_refused(file_request, identity, scopes):
    GrantFactory(identity=identity, scope=scopes["read"], expires_at=timezone.now() + timedelta(days=30))
    with pytest.raises(PortalError, match="already holds kb:read"):
        file_request("read")


def test_scope_held_on_another_resource_is_fine(file_request, identity, scopes):
    GrantFactory(identity=identity, scope=scopes["read"], resource_constraint="space:A")
    assert file_request("read", resource="space:B").status == RequestStatus.PENDING


def test_expired_grant_does_not_block(file_request, identity, scopes):
    GrantFactory(identity=identity, scope=scopes["read"], expires_at=timezone.now() - timedelta(minutes=1))
    assert file_request("read").status == RequestStatus.PENDING


def test_duplicate_pending_request_is_refused(file_request):
    file_request("read")
    with pytest.raises(PortalError, match="pending request already"):
        file_request("read")


def test_one_approval_issues_time_bound_grants(file_request, security, identity, tool):
    request = file_request("read", duration_days=14, resource="space:SUPPORT")
    before = timezone.now()
    services.request_decide(actor=security, request_id=request.pk, kind="approve", comment="ok")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.decided_at is not None
    grant = ScopeGrant.objects.get(identity=identity)
    assert grant.tool == tool and grant.status == "active" and grant.resource_constraint == "space:SUPPORT"
    assert timedelta(days=14) - timedelta(seconds=5) < grant.expires_at - before < timedelta(days=14, seconds=5)
    assert GrantIssue.objects.get(grant=grant).request == request
    assert _actions(request) == ["request.filed", "request.approved"]
    assert _actions(grant) == ["grant.issued"]


def test_two_person_rule(file_request, security, security2, identity):
    request = file_request("write")
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING and not ScopeGrant.objects.exists()
    with pytest.raises(Conflict, match="already decided"):
        services.request_decide(actor=security, request_id=request.pk, kind="approve")
    services.request_decide(actor=security2, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert ScopeGrant.objects.filter(identity=identity).count() == 1
    assert _actions(request) == ["request.filed", "request.approval_recorded", "request.approved"]


def test_one_deny_ends_the_request(file_request, security, security2):
    request = file_request("write")
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    services.request_decide(actor=security2, request_id=request.pk, kind="deny", comment="too broad")
    request.refresh_from_db()
    assert request.status == RequestStatus.DENIED
    assert not ScopeGrant.objects.exists()
    assert AuditEntry.objects.get(action="request.denied").comment == "too broad"


def test_late_decisions_conflict(file_request, security, security2):
    request = file_request("read")
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    for kind in ("approve", "deny"):
        with pytest.raises(Conflict):
            services.request_decide(actor=security2, request_id=request.pk, kind=kind)
    with pytest.raises(Conflict):
        services.request_cancel(actor=request.requester, request_id=request.pk)
    assert Decision.objects.count() == 1


def test_requester_never_decides_even_as_security(security, scopes):
    tool = ToolFactory(owner=security, environment="dev")
    identity = IdentityFactory(owner=security)
    tool.bindings.create(identity=identity)
    request = services.request_file(
        requester=security, tool=tool, identity=identity, items=[services.ScopeItem(scopes["read"])],
        justification="Security's own tool needs to read the knowledge base.", duration_days=5,
    )  # fmt: skip
    for kind in ("approve", "deny"):
        with pytest.raises(PermissionDenied):
            services.request_decide(actor=security, request_id=request.pk, kind=kind)
    assert not Decision.objects.exists()


def test_owners_and_managers_cannot_decide(file_request, other_owner, manager):
    request = file_request("read")
    for actor in (request.requester, other_owner, manager):
        with pytest.raises(PermissionDenied):
            services.request_decide(actor=actor, request_id=request.pk, kind="approve")


def test_cancel_only_by_requester(file_request, security):
    request = file_request("read")
    with pytest.raises(PermissionDenied):
        services.request_cancel(actor=security, request_id=request.pk)
    services.request_cancel(actor=request.requester, request_id=request.pk)
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert _actions(request) == ["request.filed", "request.cancelled"]


def test_requester_is_mailed_on_every_decision(
    file_request, security, security2, celery_eager, django_capture_on_commit_callbacks
):
    request = file_request("write")
    with django_capture_on_commit_callbacks(execute=True):
        services.request_decide(actor=security, request_id=request.pk, kind="approve")
        services.request_decide(actor=security2, request_id=request.pk, kind="approve")
    # The grants issued may also open a finding the owner is alerted about (issue 18): only the decision mails here.
    to_requester = [m for m in mail.outbox if m.to == [request.requester.email] and "Scope request #" in m.subject]
    assert len(to_requester) == 2
    assert "1 of 2 approvals" in to_requester[0].body and "approved" in to_requester[1].subject


class BrokenMailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP is down")


def test_mail_failure_never_rolls_back_a_decision(file_request, security, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenMailBackend"
    request = file_request("read")
    with django_capture_on_commit_callbacks(execute=True):
        services.request_decide(actor=security, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert ScopeGrant.objects.filter(status="active").count() == 1


def test_revoke(file_request, security, other_owner, identity):
    request = file_request("read")
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    grant = ScopeGrant.objects.get()
    with pytest.raises(PermissionDenied):
        services.grant_revoke(actor=other_owner, grant_id=grant.pk, reason="not mine")
    with pytest.raises(PortalError, match="reason"):
        services.grant_revoke(actor=request.requester, grant_id=grant.pk, reason="  ")
    services.grant_revoke(actor=request.requester, grant_id=grant.pk, reason="Tool no longer needs it")
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.revoke_reason == "Tool no longer needs it"
    with pytest.raises(Conflict):
        services.grant_revoke(actor=security, grant_id=grant.pk, reason="again")
    assert _actions(grant) == ["grant.issued", "grant.revoked"]


def test_renewal_supersedes_a_grant_about_to_expire(file_request, security, identity):
    request = file_request("read", duration_days=5)
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    old = ScopeGrant.objects.get()
    renewal = services.request_renew(requester=request.requester, request_id=request.pk)
    assert renewal.renewal_of == request and renewal.justification.startswith(f"Renewal of request #{request.pk}.")
    services.request_decide(actor=security, request_id=renewal.pk, kind="approve")
    old.refresh_from_db()
    assert old.status == "expired"
    new = ScopeGrant.objects.get(status="active")
    assert new.issue.request == renewal
    assert _actions(old) == ["grant.issued", "grant.superseded"]


def test_renewal_too_early_is_refused(file_request, security):
    request = file_request("read", duration_days=60)
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    with pytest.raises(PortalError, match="already holds"):
        services.request_renew(requester=request.requester, request_id=request.pk)


def test_audit_entries_are_append_only(file_request):
    file_request("read")
    entry = AuditEntry.objects.get()
    entry.comment = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(comment="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get().comment == ""


def test_policy_tightens_if_the_tool_moves_to_restricted_prod(file_request, security, security2, tool):
    request = file_request("read")
    assert request.required_approvals == 1
    tool.environment, tool.data_classification = "prod", "restricted"
    tool.save()
    services.request_decide(actor=security, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING and request.required_approvals == 2
    assert "prod_restricted_tool" in request.policy_rules
    services.request_decide(actor=security2, request_id=request.pk, kind="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


def test_owner_cannot_wave_findings_away(api_as, owner):
    from tests.factories import CredentialFactory, IdentityFactory

    identity = IdentityFactory(owner=owner, interactive_use_seen=True, status="disabled")
    credential = CredentialFactory(identity=identity, revoked_at=timezone.now())
    client = api_as("owner")
    for body in ({"interactive_use_seen": False}, {"last_reviewed_at": "2026-11-01T00:00:00Z"}, {"status": "active"}):
        assert client.patch(f"/api/v1/identities/{identity.pk}/", body, format="json").status_code == 400
    assert client.patch(f"/api/v1/credentials/{credential.pk}/", {"revoked_at": None}, format="json").status_code == 400
    bad = {"identity": identity.name, "kind": "api_key", "fingerprint": "sk-live-THIS-IS-A-SECRET-123"}
    assert client.post("/api/v1/credentials/", bad, format="json").status_code == 400
    assert api_as("security").patch(f"/api/v1/identities/{identity.pk}/", {"status": "active"}).status_code == 200
