"""The approval policy's run-time switches: low-risk auto-approval, on or off and for how long."""

from django.core.exceptions import PermissionDenied
from django.db import transaction

from approvals import policy
from approvals.models import PolicySettings
from inventory.audit.record import audit_many, audit_record
from inventory.choices import GrantStatus
from inventory.models import ScopeGrant
from nhi_portal import roles
from nhi_portal.exceptions import PortalError


@transaction.atomic
def policy_settings_update(*, actor, auto_approve_low_risk: bool, auto_approve_max_days: int) -> PolicySettings:
    """Security switches low-risk auto-approval on or off; the change is audited like any other."""
    if not roles.is_security(actor):
        raise PermissionDenied("Only the security team changes the approval policy.")
    if not 1 <= auto_approve_max_days <= policy.AUTO_APPROVE_MAX_DAYS_LIMIT:
        raise PortalError(
            f"Auto-approval may cover 1 to {policy.AUTO_APPROVE_MAX_DAYS_LIMIT} days.", field="auto_approve_max_days"
        )
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
