"""Facts the rules rely on, and which direction of change lowers risk.

The environment and data classification of a tool decide how many approvers its grants need; where a credential is
stored and whether a vendor holds an identity decide which findings it has. A change that lowers any of them is
self-attestation by the person the rule governs, so it is not applied: it is held as a FactChange, reported by the
`fact_change_unreviewed` detector, and applied only when a security user other than its author confirms it. Until
then the policy, authorize and every detector read the riskier value it would have replaced. Changes that raise
risk apply at once. Both are audited with before and after.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from inventory.audit.record import audit_record
from inventory.changes import changes_record
from nhi_portal import roles
from nhi_portal.exceptions import PortalError

from .choices import CredentialStorage, DataClassification, Environment
from .models import AITool, Credential, FactChange, ServiceIdentity, SubjectType, ToolIdentity

# Higher is riskier. A change to a lower rank is the direction that clears findings.
_ENVIRONMENT = {Environment.DEV: 0, Environment.STAGING: 1, Environment.PROD: 2}
_CLASSIFICATION = {
    DataClassification.PUBLIC: 0,
    DataClassification.INTERNAL: 1,
    DataClassification.CONFIDENTIAL: 2,
    DataClassification.RESTRICTED: 3,
}
_STORAGE = {
    CredentialStorage.VAULT: 0,
    CredentialStorage.CLOUD_SECRET_MANAGER: 0,
    CredentialStorage.CI_SECRET: 1,
    CredentialStorage.ENV: 2,
    CredentialStorage.UNKNOWN: 2,
    CredentialStorage.CONNECTOR_CONFIG: 3,
    CredentialStorage.PROMPT: 3,
    CredentialStorage.REPOSITORY: 3,
}
_THIRD_PARTY = {False: 0, True: 1}

GOVERNED: dict[type, dict[str, dict]] = {
    AITool: {"environment": _ENVIRONMENT, "data_classification": _CLASSIFICATION},
    ServiceIdentity: {"environment": _ENVIRONMENT, "third_party": _THIRD_PARTY},
    Credential: {"storage": _STORAGE},
}
_SUBJECT = {AITool: SubjectType.TOOL, ServiceIdentity: SubjectType.IDENTITY, Credential: SubjectType.CREDENTIAL}


_SCOPE_RISK = {"read": 0, "write": 1, "admin": 2}

PROVIDER_BOUND = (
    "This identity holds live grants of its provider's scopes; it keeps its provider until they are revoked (a grant "
    "of one provider's scope is never held by another provider's identity)."
)


def provider_bound(identity_ids) -> set[int]:
    """The identities among these that hold an active grant: their provider does not change (by page, API or import),
    since every grant was approved for a scope of that provider."""
    from .choices import GrantStatus
    from .models import ScopeGrant

    live = ScopeGrant.objects.filter(identity_id__in=list(identity_ids), status=GrantStatus.ACTIVE)
    return set(live.values_list("identity_id", flat=True).distinct())


def scope_risk_lowered(name: str, before, after) -> bool:
    """A scope's risk or sensitivity decides how many approvers every grant of it needs, at once: it is never lowered
    in place (a corrected scope is a new scope), by import or in the admin."""
    if name == "sensitive":
        return bool(before) and not after
    return name == "risk" and _SCOPE_RISK.get(after, 0) < _SCOPE_RISK.get(before, 0)


def lowered(model: type, before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """The governed fields that moved to a less risky value: {field: [before, after]}."""
    ranks = GOVERNED.get(model, {})
    return {
        name: [before[name], after[name]]
        for name, rank in ranks.items()
        if name in before and name in after and rank.get(after[name], 0) < rank.get(before[name], 0)
    }


def hold_fact_changes(*, actor, obj, before: dict[str, Any]) -> FactChange | None:
    """Inside the caller's transaction, before it saves `obj`: put back the governed fields the change lowered, and
    keep them as a FactChange for review (one entry in the audit trail says what was held)."""
    after = {name: getattr(obj, name) for name in GOVERNED.get(type(obj), {})}
    changes = lowered(type(obj), before, after)
    if not changes:
        return None
    for name, (old, _new) in changes.items():
        setattr(obj, name, old)
    tool = obj if isinstance(obj, AITool) else None
    identity = obj if isinstance(obj, ServiceIdentity) else getattr(obj, "identity", None)
    change = FactChange.objects.create(
        subject_type=_SUBJECT[type(obj)],
        subject_id=obj.pk,
        tool=tool,
        identity=identity,
        changes=changes,
        changed_by=actor,
    )
    held_before = {name: old for name, (old, _new) in changes.items()}
    held_after = {name: new for name, (_old, new) in changes.items()}
    audit_record(actor=actor, action=f"{obj._meta.model_name}.change_held", obj=obj, before=held_before,
                 after=held_after, comment="Lowers risk: applied once another security user confirms it.")  # fmt: skip
    _detect_now(change.subject_type, obj, changes)  # its review finding opens now, not at the nightly scan
    return change


_MODELS = {SubjectType.TOOL: AITool, SubjectType.IDENTITY: ServiceIdentity, SubjectType.CREDENTIAL: Credential}


def fact_changes_confirm(*, actor, subject_type: str, subject_id: int, comment: str = "") -> int:
    """Security confirms the held changes of one object: each is applied where the field still holds the value it
    replaced (a later change wins). Never by the author of the change: no single person lowers a fact the rules
    rely on. Inside the caller's transaction; returns the number of changes confirmed."""
    if not roles.is_security(actor):
        raise PermissionDenied("Only the security team confirms a held change.")
    pending = list(
        FactChange.objects.select_for_update()
        .filter(subject_type=subject_type, subject_id=subject_id, reviewed_at__isnull=True)
        .order_by("pk")
    )
    if any(change.changed_by_id == actor.pk for change in pending):
        raise PortalError("You made this change; another security user must confirm it.", field="findings")
    model = _MODELS[subject_type]
    obj = model._default_manager.select_for_update().filter(pk=subject_id).first()
    now = timezone.now()
    if obj is not None and pending:
        before, after = {}, {}
        for change in pending:
            for name, (old, new) in change.changes.items():
                if getattr(obj, name) == old:
                    before.setdefault(name, old)
                    after[name] = new
                    setattr(obj, name, new)
        if after:
            obj.save(update_fields=[*after, *(["updated_at"] if hasattr(obj, "updated_at") else [])])
            audit_record(actor=actor, action=f"{model._meta.model_name}.change_confirmed", obj=obj, before=before,
                         after=after, comment=comment)  # fmt: skip
        # Even when a later change superseded them all: the review finding resolves now, not at the nightly scan.
        _detect_now(subject_type, obj, after or {change_field for c in pending for change_field in c.changes})
    FactChange.objects.filter(pk__in=[c.pk for c in pending]).update(reviewed_by=actor, reviewed_at=now)
    return len(pending)


def _detect_now(subject_type: str, obj, fields) -> None:
    """Holding a change and confirming it are writes like any other (issue 18): queue the targeted run over the object,
    so the review finding opens, and the findings a confirmed change clears resolve, now rather than at the nightly
    scan."""
    topics = [f"{subject_type}.{name}" for name in fields]
    if subject_type == SubjectType.TOOL:
        bound = ToolIdentity.objects.filter(tool=obj).values_list("identity_id", flat=True)
        changes_record(topics=topics, tools=[obj.pk], identities=list(bound))
    elif subject_type == SubjectType.IDENTITY:
        changes_record(topics=topics, identities=[obj.pk])
    else:
        changes_record(topics=topics, identities=[obj.identity_id])
