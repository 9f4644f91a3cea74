"""Grants: issued by an approved request, revoked by security or their owner. Revocation is final (the services
refuse to undo it, and a database trigger refuses any UPDATE that would)."""

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from approvals.choices import DecisionKind
from approvals.models import AccessRequest, GrantIssue
from inventory.audit.record import audit_record, snapshot
from inventory.changes import changes_record
from inventory.choices import GrantStatus
from inventory.models import ScopeGrant
from nhi_portal import roles
from nhi_portal.exceptions import Conflict, PortalError


def grants_issue(request: AccessRequest, *, approver, actor_label: str | None, now: datetime) -> list[ScopeGrant]:
    """The grants of an approved request, inside its decision's transaction: one per requested scope, superseding
    the identity's active grant of the same scope and resource."""
    expires_at = now + timedelta(days=request.duration_days)
    # The approval travels with the grant, so authorize can hold it against the policy as it is at decision time.
    people = request.decisions.filter(kind=DecisionKind.APPROVE, approver__isnull=False).count()
    by_policy = actor_label is not None and people == 0
    grants = []
    for item in request.items.select_related("scope"):
        # A renewal (or a grant issued meanwhile by another request) is superseded, never duplicated.
        current = (
            ScopeGrant.objects.select_for_update()
            .filter(identity=request.identity, scope=item.scope, resource_constraint=item.resource_constraint)
            .filter(status=GrantStatus.ACTIVE)
            .first()
        )
        if current is not None:
            before = snapshot(current)
            current.status = GrantStatus.EXPIRED
            current.save(update_fields=["status"])
            audit_record(
                actor=approver,
                actor_label=actor_label,
                action="grant.superseded",
                obj=current,
                before={"status": before["status"]},
                after={"status": current.status, "superseded_by_request": request.pk},
            )
        grant = ScopeGrant.objects.create(
            identity=request.identity,
            scope=item.scope,
            tool=request.tool,
            resource_constraint=item.resource_constraint,
            granted_at=now,
            expires_at=expires_at,
            approvals=people,
            approved_by_policy=by_policy,
        )
        GrantIssue.objects.create(request=request, grant=grant, approved_until=expires_at)
        audit_record(
            actor=approver,
            actor_label=actor_label,
            action="grant.issued",
            obj=grant,
            after={**snapshot(grant), "request": request.pk},
        )
        grants.append(grant)
    changes_record(topics=["grant"], identities=[request.identity_id], tools=[request.tool_id])  # issue 18: detect now
    return grants


def grant_may_revoke(user, grant: ScopeGrant) -> bool:
    if roles.is_security(user):
        return True
    if not roles.may_write(user):
        return False
    return grant.identity.owner_id == user.pk or (grant.tool_id is not None and grant.tool.owner_id == user.pk)


@transaction.atomic
def grant_revoke(*, actor, grant_id: int, reason: str) -> ScopeGrant:
    # Lock only the grant row: `tool` is nullable, and PostgreSQL cannot lock the nullable side of an outer join.
    grant = (
        ScopeGrant.objects.select_for_update(of=("self",)).select_related("identity", "tool", "scope").get(pk=grant_id)
    )
    if not grant_may_revoke(actor, grant):
        raise PermissionDenied("Only security or the owner can revoke this grant.")
    reason = (reason or "").strip()
    if not reason:
        raise PortalError("Give a reason for revoking.", field="reason")
    if grant.status != GrantStatus.ACTIVE:
        raise Conflict(f"This grant is already {grant.get_status_display().lower()}.")
    grant.status, grant.revoked_at, grant.revoke_reason = GrantStatus.REVOKED, timezone.now(), reason
    grant.save(update_fields=["status", "revoked_at", "revoke_reason"])
    audit_record(
        actor=actor,
        action="grant.revoked",
        obj=grant,
        before={"status": GrantStatus.ACTIVE},
        after={"status": grant.status, "revoked_at": grant.revoked_at},
        comment=reason,
    )
    changes_record(topics=["grant"], identities=[grant.identity_id], tools=[grant.tool_id])  # issue 18: detect now
    return grant
