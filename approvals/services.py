"""Workflow transitions for scope requests and grants. Each is one transaction that locks the row it
changes and writes its audit entry; mail goes out after commit.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.audit.record import audit_many, audit_record, snapshot
from inventory.choices import GrantStatus
from inventory.models import AITool, Scope, ScopeGrant, ServiceIdentity, ToolIdentity
from inventory.resources import canonical_resource
from nhi_portal import roles
from nhi_portal.exceptions import Conflict, PortalError

from . import policy, tasks
from .choices import DecisionKind, RequestStatus
from .models import AccessRequest, Decision, GrantIssue, PolicySettings, RequestedScope

MIN_JUSTIFICATION_CHARS = 20
MIN_JUSTIFICATION_WORDS = 4
JOB = "job:approvals"


@dataclass(frozen=True)
class ScopeItem:
    scope: Scope
    resource_constraint: str = ""


def _check_justification(text: str) -> str:
    text = (text or "").strip()
    if len(text) < MIN_JUSTIFICATION_CHARS or len(text.split()) < MIN_JUSTIFICATION_WORDS:
        raise PortalError("Explain in at least a sentence why the tool needs these scopes.", field="justification")
    return text


def _held_conflicts(
    identity: ServiceIdentity, tool: AITool, items: Sequence[ScopeItem], *, renewal: bool, now: datetime
):
    """Active grants the request would duplicate. A renewal may overlap a grant that expires soon."""
    match = Q()
    for item in items:
        match |= Q(scope=item.scope, resource_constraint=item.resource_constraint)
    # Grants belong to the identity: one identity holds a scope once, whichever tool it was requested for.
    held = ScopeGrant.objects.filter(identity=identity).active(at=now).filter(match).select_related("scope")
    if renewal:
        held = held.exclude(expires_at__lte=now + timedelta(days=policy.REMINDER_DAYS))
    # A grant nobody approved (imported) or approved below today's policy does not authorize: asking for it again
    # is how it gets the approval it lacks, and the approval supersedes it.
    return [
        grant
        for grant in held
        if not policy.grant_below_policy(
            approvals=grant.approvals, by_policy=grant.approved_by_policy, scope=grant.scope, tool=tool
        )
    ]


def _pending_conflicts(identity: ServiceIdentity, items: Sequence[ScopeItem]):
    match = Q()
    for item in items:
        match |= Q(scope=item.scope, resource_constraint=item.resource_constraint)
    return list(
        RequestedScope.objects.filter(request__identity=identity, request__status=RequestStatus.PENDING)
        .filter(match)
        .select_related("scope")
    )


@transaction.atomic
def request_file(
    *,
    requester,
    tool: AITool,
    identity: ServiceIdentity,
    items: Sequence[ScopeItem],
    justification: str,
    duration_days: int,
    renewal_of: AccessRequest | None = None,
) -> AccessRequest:
    """File a request for scopes for an identity behind a tool the requester owns."""
    if not roles.may_write(requester) or not AITool.objects.editable_by(requester).filter(pk=tool.pk).exists():
        raise PermissionDenied("You can only request scopes for tools you own.")
    if not ToolIdentity.objects.filter(tool=tool, identity=identity).exists():
        raise PortalError(f"{identity.name} is not bound to {tool.name}.", field="identity")
    justification = _check_justification(justification)
    if not items:
        raise PortalError("Pick at least one scope.", field="scopes")
    for item in items:
        if item.resource_constraint and canonical_resource(item.resource_constraint) != item.resource_constraint:
            # Resources are matched in canonical form; a pattern that is not canonical would never match as written.
            raise PortalError(
                "A resource pattern must be plain text: no percent-encoding, backslashes, compatibility characters, "
                "control characters or '.'/'..' segments.",
                field="scopes",
            )
    keys = [(i.scope.pk, i.resource_constraint) for i in items]
    if len(set(keys)) != len(keys):
        raise PortalError("Each scope and resource may appear only once.", field="scopes")
    outcome = policy.evaluate(tool=tool, scopes=[i.scope for i in items], duration_days=duration_days)
    if not 1 <= duration_days <= outcome.max_duration_days:
        raise PortalError(
            f"Duration must be between 1 and {outcome.max_duration_days} days for these scopes.",
            field="duration_days",
        )
    now = timezone.now()
    if held := _held_conflicts(identity, tool, items, renewal=renewal_of is not None, now=now):
        names = ", ".join(sorted({g.scope.name for g in held}))
        raise PortalError(f"{identity.name} already holds {names} actively.", field="scopes")
    if pending := _pending_conflicts(identity, items):
        names = ", ".join(sorted({p.scope.name for p in pending}))
        raise PortalError(f"A pending request already asks for {names} for {identity.name}.", field="scopes")

    request = AccessRequest.objects.create(
        requester=requester,
        tool=tool,
        identity=identity,
        justification=justification,
        duration_days=duration_days,
        required_approvals=outcome.required_approvals,
        policy_rules=list(outcome.matched_rules),
        renewal_of=renewal_of,
    )
    RequestedScope.objects.bulk_create(
        [RequestedScope(request=request, scope=i.scope, resource_constraint=i.resource_constraint) for i in items]
    )
    audit_record(actor=requester, action="request.filed", obj=request, after=_request_state(request))
    if outcome.auto_approve:
        _decide(request, approver=None, kind=DecisionKind.APPROVE, comment="", policy_rule=policy.AUTO_APPROVE_RULE)
    else:
        # robust: the request is filed whatever happens to its mail, so a broker outage is logged, not a 500.
        transaction.on_commit(lambda: tasks.notify_request_filed.delay(request.pk), robust=True)
    return request


def request_renew(*, requester, request_id: int) -> AccessRequest:
    """A new request prefilled from an approved one: same tool, identity, scopes and duration."""
    original = AccessRequest.objects.visible_to(requester).get(pk=request_id)
    if original.status != RequestStatus.APPROVED:
        raise Conflict("Only an approved request can be renewed.")
    revoked = (
        ScopeGrant.objects.filter(issue__request=original, status=GrantStatus.REVOKED)
        .select_related("scope")
        .order_by("pk")
    )
    if reasons := [f"{g.scope.name}: {g.revoke_reason or 'no reason recorded'}" for g in revoked]:
        # A revocation is a decision; renewing in one click would undo it without the reviewer seeing why.
        raise Conflict(
            "This access was revoked (" + "; ".join(reasons) + "). File a new request that answers the revocation."
        )
    items = [ScopeItem(i.scope, i.resource_constraint) for i in original.items.select_related("scope")]
    justification = f"Renewal of request #{original.pk}. {original.justification}"
    return request_file(
        requester=requester,
        tool=original.tool,
        identity=original.identity,
        items=items,
        justification=justification,
        duration_days=original.duration_days,
        renewal_of=original,
    )


def _lock_request(request_id: int) -> AccessRequest:
    # Every transition locks the request row first, so concurrent approvers queue behind each other.
    return AccessRequest.objects.select_for_update(of=("self",)).select_related("tool").get(pk=request_id)


@transaction.atomic
def request_decide(*, actor, request_id: int, kind: str, comment: str = "") -> AccessRequest:
    """Approve or deny. Security only, never the requester, each approver once; 409 once not pending."""
    if not roles.is_security(actor):
        raise PermissionDenied("Only the security team decides on scope requests.")
    request = _lock_request(request_id)
    if request.requester_id == actor.pk:
        raise PermissionDenied("You cannot decide on your own request.")
    if request.status != RequestStatus.PENDING:
        raise Conflict(f"This request is already {request.get_status_display().lower()}.")
    if request.created_at <= timezone.now() - timedelta(days=policy.PENDING_EXPIRY_DAYS):
        # The expiry job may not have run yet; the window is the rule, not the job.
        raise Conflict(
            f"This request waited more than {policy.PENDING_EXPIRY_DAYS} days and has expired; the owner must file it "
            "again so it is reviewed against the current state."
        )
    if request.decisions.filter(approver=actor).exists():
        raise Conflict("You have already decided on this request; a second approval must come from someone else.")
    _tighten_policy(request)
    _decide(request, approver=actor, kind=kind, comment=comment.strip())
    return request


def _tighten_policy(request: AccessRequest) -> None:
    """Re-evaluate the policy against the tool as it is now: a tool moved to production or restricted data after
    filing needs the stricter number of approvers. The number never goes down."""
    scopes = [item.scope for item in request.items.select_related("scope")]
    current = policy.evaluate(tool=request.tool, scopes=scopes, duration_days=request.duration_days)
    if current.required_approvals > request.required_approvals:
        request.required_approvals = current.required_approvals
        request.policy_rules = sorted(set(request.policy_rules) | set(current.matched_rules))
        request.save(update_fields=["required_approvals", "policy_rules"])


def _decide(request: AccessRequest, *, approver, kind: str, comment: str, policy_rule: str = "") -> Decision:
    now = timezone.now()
    before = _request_state(request)
    decision = Decision.objects.create(
        request=request, approver=approver, kind=kind, comment=comment, policy_rule=policy_rule
    )
    actor_label = f"policy:{policy_rule}" if policy_rule else None
    approvals = request.decisions.filter(kind=DecisionKind.APPROVE).count()
    if kind == DecisionKind.DENY:
        request.status, request.decided_at, action = RequestStatus.DENIED, now, "request.denied"
    elif policy_rule or approvals >= request.required_approvals:
        request.status, request.decided_at, action = RequestStatus.APPROVED, now, "request.approved"
    else:
        action = "request.approval_recorded"
    request.save(update_fields=["status", "decided_at"])
    audit_record(
        actor=approver,
        actor_label=actor_label,
        action=action,
        obj=request,
        before=before,
        after={**_request_state(request), "approvals": approvals},
        comment=comment,
    )
    if request.status == RequestStatus.APPROVED:
        _issue_grants(request, approver=approver, actor_label=actor_label, now=now)
    # Snapshot now: by the time the mail goes out a second approver may already have moved the request on.
    as_decided = {"status": request.status, "approvals": approvals, "required_approvals": request.required_approvals}
    transaction.on_commit(lambda: tasks.notify_request_decided.delay(decision.pk, **as_decided), robust=True)
    return decision


def _issue_grants(request: AccessRequest, *, approver, actor_label: str | None, now: datetime) -> list[ScopeGrant]:
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
    return grants


@transaction.atomic
def request_cancel(*, actor, request_id: int, comment: str = "") -> AccessRequest:
    request = _lock_request(request_id)
    if request.requester_id != actor.pk:
        raise PermissionDenied("Only the requester can cancel a request.")
    if request.status != RequestStatus.PENDING:
        raise Conflict(f"This request is already {request.get_status_display().lower()}.")
    before = _request_state(request)
    request.status, request.decided_at = RequestStatus.CANCELLED, timezone.now()
    request.save(update_fields=["status", "decided_at"])
    audit_record(
        actor=actor, action="request.cancelled", obj=request, before=before, after=_request_state(request),
        comment=comment,
    )  # fmt: skip
    return request


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
    return grant


BATCH = 2000


def grants_expire_due(*, now: datetime | None = None) -> int:
    """Expire every active grant past its end: one UPDATE and one audit INSERT per batch, never a row loop."""
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            due = list(
                ScopeGrant.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=GrantStatus.ACTIVE, expires_at__lte=now)
                .order_by("pk")
                .values_list("pk", "scope__name", "identity__name")[:BATCH]
            )
            if not due:
                return total
            ScopeGrant.objects.filter(pk__in=[pk for pk, _, _ in due]).update(status=GrantStatus.EXPIRED)
            audit_many(
                action="grant.expired",
                object_type="inventory.scopegrant",
                objects=[(pk, f"{scope} for {identity}") for pk, scope, identity in due],
                before={"status": GrantStatus.ACTIVE},
                after={"status": GrantStatus.EXPIRED},
                actor_label=JOB,
            )
        total += len(due)


def requests_expire_stale(*, now: datetime | None = None) -> int:
    """Pending requests nobody decided on within the policy's window expire."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=policy.PENDING_EXPIRY_DAYS)
    total = 0
    while True:
        with transaction.atomic():
            stale = list(
                AccessRequest.objects.select_for_update(skip_locked=True)
                .filter(status=RequestStatus.PENDING, created_at__lte=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:BATCH]
            )
            if not stale:
                return total
            AccessRequest.objects.filter(pk__in=stale).update(status=RequestStatus.EXPIRED, decided_at=now)
            audit_many(
                action="request.expired",
                object_type="approvals.accessrequest",
                objects=[(pk, f"Request #{pk}") for pk in stale],
                before={"status": RequestStatus.PENDING},
                after={"status": RequestStatus.EXPIRED},
                actor_label=JOB,
                comment=f"No decision within {policy.PENDING_EXPIRY_DAYS} days.",
            )
        total += len(stale)


def grants_remind_expiring(*, now: datetime | None = None) -> int:
    """Queue one reminder per owner for their grants that expire within the reminder window and were not reminded
    yet; returns how many grants. The task marks them reminded only once the mail has gone out.

    Nothing is claimed here (no column for it, and the default cache is per process, so a cache key would not be
    seen by the other workers): if this hourly job runs again while an owner's reminder is still queued or
    retrying, the owner gets a second task but not a second mail, because the task mails and marks only the grants
    still unmarked, under a row lock (`notifications.grants_expiring`)."""
    now = now or timezone.now()
    due = (
        ScopeGrant.objects.filter(status=GrantStatus.ACTIVE, expiry_reminded_at__isnull=True)
        .filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=policy.REMINDER_DAYS))
        .order_by("pk")
        .values_list("tool__owner_id", "identity__owner_id", "pk")
    )
    by_owner: dict[int, list[int]] = {}
    for tool_owner, identity_owner, pk in due:
        # The tool's owner answers for a grant made for a tool; the identity's owner for one made for any tool.
        by_owner.setdefault(tool_owner or identity_owner, []).append(pk)
    # No writes to wait for, so no on_commit: queue now.
    for owner_id, grant_ids in by_owner.items():
        tasks.notify_grants_expiring.delay(owner_id, grant_ids)
    return sum(len(grant_ids) for grant_ids in by_owner.values())


def _request_state(request: AccessRequest) -> dict:
    return {"status": request.status, "required_approvals": request.required_approvals}


@transaction.atomic
def policy_settings_update(*, actor, auto_approve_low_risk: bool, auto_approve_max_days: int) -> PolicySettings:
    """Security switches low-risk auto-approval on or off; the change is audited like any other."""
    if not roles.is_security(actor):
        raise PermissionDenied("Only the security team changes the approval policy.")
    if not 1 <= auto_approve_max_days <= policy.MAX_DAYS_BY_RISK["read"]:
        raise PortalError("Auto-approval may cover 1 to 90 days.", field="auto_approve_max_days")
    current = PolicySettings.objects.select_for_update().order_by("pk").first() or PolicySettings()
    before = {
        "auto_approve_low_risk": current.auto_approve_low_risk,
        "auto_approve_max_days": current.auto_approve_max_days,
    }
    current.auto_approve_low_risk, current.auto_approve_max_days = auto_approve_low_risk, auto_approve_max_days
    current.updated_by = actor
    current.save()
    after = {"auto_approve_low_risk": auto_approve_low_risk, "auto_approve_max_days": auto_approve_max_days}
    audit_record(actor=actor, action="policy.updated", obj=current, before=before, after=after)
    if before["auto_approve_low_risk"] and not auto_approve_low_risk:
        _withdraw_auto_approvals(actor)
    return current


def _withdraw_auto_approvals(actor) -> None:
    """Switching auto-approval off withdraws what it approved: those grants no longer meet the policy, and wait
    (denied as grant_unapproved, listed by its detector) for a person to approve them."""
    withdrawn = list(
        ScopeGrant.objects.select_for_update(of=("self",))
        .filter(status=GrantStatus.ACTIVE, approved_by_policy=True)
        .values_list("pk", "scope__name", "identity__name")
    )
    ScopeGrant.objects.filter(pk__in=[pk for pk, _, _ in withdrawn]).update(approved_by_policy=False)
    audit_many(
        action="grant.auto_approval_withdrawn",
        object_type="inventory.scopegrant",
        objects=[(pk, f"{scope} for {identity}") for pk, scope, identity in withdrawn],
        before={"approved_by_policy": True},
        after={"approved_by_policy": False},
        actor_label=actor.get_username(),
        comment="Auto-approval was switched off.",
    )
