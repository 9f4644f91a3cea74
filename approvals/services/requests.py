"""Scope requests: filing, deciding, cancelling and renewing. Each transition is one transaction that locks the
request row and writes its audit entry; an approval issues the grants (`grants.grants_issue`); mail goes after commit.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals import policy, tasks
from approvals.choices import DecisionKind, RequestStatus
from approvals.models import AccessRequest, Decision, RequestedScope
from inventory.audit.record import audit_record
from inventory.choices import GrantStatus
from inventory.models import AITool, Scope, ScopeGrant, ServiceIdentity, ToolIdentity
from inventory.resources import canonical_resource
from nhi_portal import roles
from nhi_portal.exceptions import Conflict, PortalError

from .grants import grants_issue

MIN_JUSTIFICATION_CHARS = 20
MIN_JUSTIFICATION_WORDS = 4


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
    # An identity holds scopes at its own provider only: a GitHub App cannot be granted a Jira scope. The rule lives
    # here, not in the form, so that the page, the API, renewals and the demo data all meet it.
    _same_provider(identity, [item.scope for item in items])
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


def request_may_decide(user, request: AccessRequest) -> bool:
    """Whether the page offers approve and deny: what `request_decide` allows, read from the request's prefetched
    decisions (the pending window aside: a decision after it answers 409 with the reason)."""
    decided = any(d.approver_id == user.pk for d in request.decisions.all())
    return roles.is_security(user) and request.is_pending and request.requester_id != user.pk and not decided


def request_may_cancel(user, request: AccessRequest) -> bool:
    return request.is_pending and request.requester_id == user.pk


def request_may_renew(user, request: AccessRequest) -> bool:
    """An approved request, renewed by someone who may still request scopes for its tool (`request_renew` then
    refuses it if a grant of it was revoked, saying why)."""
    return (
        request.status == RequestStatus.APPROVED
        and roles.may_write(user)
        and AITool.objects.editable_by(user).filter(pk=request.tool_id).exists()
    )


def _lock_request(request_id: int) -> AccessRequest:
    # Every transition locks the request row first, so concurrent approvers queue behind each other.
    return AccessRequest.objects.select_for_update(of=("self",)).select_related("tool").get(pk=request_id)


def _same_provider(identity, scopes) -> None:
    foreign = sorted({scope.name for scope in scopes if scope.provider != identity.provider})
    if foreign:
        raise PortalError(
            f"{identity.name} is a {identity.provider} identity; it can only be granted {identity.provider} scopes, "
            f"not {', '.join(foreign)}.",
            field="scopes",
        )


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
    if kind == "approve":
        # Against the identity as it is now: its provider may have changed since filing (and a request filed before
        # the rule existed never met it). Refused here, so no grant of another provider's scope is issued.
        _same_provider(request.identity, [item.scope for item in request.items.select_related("scope")])
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
        grants_issue(request, approver=approver, actor_label=actor_label, now=now)
    # Snapshot now: by the time the mail goes out a second approver may already have moved the request on.
    as_decided = {"status": request.status, "approvals": approvals, "required_approvals": request.required_approvals}
    transaction.on_commit(lambda: tasks.notify_request_decided.delay(decision.pk, **as_decided), robust=True)
    return decision


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


def _request_state(request: AccessRequest) -> dict:
    return {"status": request.status, "required_approvals": request.required_approvals}
