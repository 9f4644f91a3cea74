"""Containment in one step (issue 18): a finding about an exposed or compromised credential marks the credential
compromised, and from that moment authorize refuses every call through its identity (`credential_compromised`),
until a new credential is registered and the compromised one revoked (inventory.compromise keeps that rule).

What a finding contains:
- a credential finding: that credential;
- an identity finding: the identity's live credentials (and the identity, even with none on record);
- a secret found in a tool's prompt or connector text (a tool finding of `secret_exposed` or `secret_in_prompt`):
  the live credentials of every identity the tool acts through, since the text does not say whose secret it was.
Security contains any of these; an owner those on their own tools (or identities) except identity findings. Only
security lifts a containment early, with a reason (`finding_release`). Both are one transaction with their audit
entries.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from inventory.audit.record import audit_many, audit_record
from inventory.changes import changes_record
from inventory.compromise import credentials_mark_compromised, live_credentials
from inventory.models import (
    Credential,
    Finding,
    FindingStatus,
    ServiceIdentity,
    SourceObject,
    SubjectType,
    ToolIdentity,
)
from nhi_portal import roles
from nhi_portal.exceptions import Conflict, PortalError

MAX_REASON = 4000
SECRET_IN_TOOL_TEXT = ("secret_exposed", "secret_in_prompt")


def containable(finding: Finding) -> bool:
    if finding.subject_type in (SubjectType.CREDENTIAL, SubjectType.IDENTITY):
        return True
    return finding.subject_type == SubjectType.TOOL and finding.detector in SECRET_IN_TOOL_TEXT


def may_contain(user, finding: Finding) -> bool:
    """Security: any containable finding. An owner: credential findings and secrets in tool text, on a tool or an
    identity they own (they answer for those credentials and can rotate them)."""
    if not containable(finding) or not roles.may_use_portal(user):
        return False
    if roles.is_security(user):
        return True
    if not roles.may_write(user) or finding.subject_type == SubjectType.IDENTITY:
        return False
    owns_tool = finding.tool_id is not None and finding.tool.owner_id == user.pk
    owns_identity = finding.identity_id is not None and finding.identity.owner_id == user.pk
    return owns_tool or owns_identity


def _targets(finding: Finding, now) -> tuple[list[Credential], list[int]]:
    """The credentials to mark and the identities to contain."""
    if finding.subject_type == SubjectType.CREDENTIAL:
        credentials = list(Credential.objects.filter(pk=finding.subject_id).select_related("identity"))
        return credentials, [c.identity_id for c in credentials]
    if finding.subject_type == SubjectType.IDENTITY:
        identities = [finding.subject_id]
    else:
        identities = list(ToolIdentity.objects.filter(tool_id=finding.subject_id).values_list("identity_id", flat=True))
    identities = list(ServiceIdentity.objects.filter(pk__in=identities).values_list("pk", flat=True))
    credentials = list(live_credentials(now).filter(identity_id__in=identities).select_related("identity"))
    return credentials, identities


def _provider_actions(credential_ids: list[int], actor_label: str) -> list[str]:
    """Where discovery knows the provider of a contained credential, disable it there too, once this commits (a dry
    run unless CONTAINMENT_PROVIDER_DISABLE): inventory.detection.provider_disable, which audits each outcome."""
    known = list(
        SourceObject.objects.filter(credential_id__in=credential_ids, object_type="credential")
        .order_by("credential_id")
        .values_list("credential_id", "provider")
    )
    if not known:
        return []
    mode = "" if settings.CONTAINMENT_PROVIDER_DISABLE else " (dry run)"

    def queue():
        from inventory import tasks  # the wiring; imported here because it imports every capability

        tasks.disable_at_provider.delay(sorted({pk for pk, _ in known}), actor_label)

    transaction.on_commit(queue)
    return [f"credential {pk} disable at {provider} queued{mode}" for pk, provider in known]


def _locked(actor, finding_id: int) -> Finding:
    finding = (
        Finding.objects.visible_to(actor)
        .select_for_update(of=("self",))
        .select_related("tool", "identity")
        .filter(pk=finding_id)
        .first()
    )
    if finding is None:
        raise PermissionDenied("You cannot see this finding.")
    return finding


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PortalError("Say why (it is kept in the audit trail).", field="reason")
    if len(reason) > MAX_REASON:
        raise PortalError(f"At most {MAX_REASON} characters.", field="reason")
    return reason


@transaction.atomic
def finding_contain(*, actor, finding_id: int, reason: str) -> dict:
    """Contain what the finding is about. Returns {"contained": True, "actions": [what was done, in words]}."""
    reason = _reason(reason)
    finding = _locked(actor, finding_id)
    if not containable(finding):
        raise PortalError("This finding is not about a credential; there is nothing to contain.", field="finding")
    if not may_contain(actor, finding):
        raise PermissionDenied("Only security, or the owner of the tool or identity, can contain this finding.")
    if finding.status == FindingStatus.RESOLVED:
        raise Conflict("This finding is resolved; nothing is exposed any more.")
    if finding.contained_at is not None:
        raise Conflict("This finding is contained already.")
    now = timezone.now()
    credentials, identities = _targets(finding, now)
    if not identities:
        raise Conflict("The credential or identity of this finding no longer exists.")
    credentials_mark_compromised(credential_ids=[c.pk for c in credentials], now=now)
    ServiceIdentity.objects.filter(pk__in=identities, compromised_at__isnull=True).update(compromised_at=now)
    Finding.objects.filter(pk=finding.pk).update(contained_at=now, contained_by=actor)
    # exposure_uncontained (the incident-response evidence) re-checks these subjects now.
    changes_record(topics=["credential.compromised_at"], identities=identities, tools=[finding.tool_id])
    names = dict(ServiceIdentity.objects.filter(pk__in=identities).values_list("pk", "name"))
    actions = [f"credential {c.pk} (…{c.last4}) of {c.identity.name} marked compromised" for c in credentials]
    actions += [
        f"identity {names[pk]} contained: authorize answers deny (credential_compromised) until a new credential is "
        "registered and the compromised one revoked"
        for pk in sorted(names)
    ]
    actions += _provider_actions([c.pk for c in credentials], actor.get_username())
    after = {"credentials": [c.pk for c in credentials], "identities": sorted(names), "actions": actions}
    audit_record(actor=actor, action="finding.contained", obj=finding, after=after, comment=reason)
    audit_many(
        action="credential.compromised",
        object_type="inventory.credential",
        objects=[(c.pk, str(c)) for c in credentials],
        before=None,
        after={"compromised_at": now.isoformat(), "finding": finding.pk},
        actor_label=actor.get_username(),
        comment=reason,
    )
    return {"contained": True, "actions": actions}


@transaction.atomic
def finding_release(*, actor, finding_id: int, reason: str) -> dict:
    """Security lifts a containment before its rule is met (a false alarm, say): the identities it contained answer
    authorize again and their credentials are no longer marked. Audited with the reason."""
    if not roles.is_security(actor):
        raise PermissionDenied("Only security can lift a containment.")
    reason = _reason(reason)
    finding = _locked(actor, finding_id)
    if finding.contained_at is None:
        raise Conflict("This finding is not contained.")
    credentials, identities = _targets(finding, timezone.now())
    if finding.subject_type != SubjectType.CREDENTIAL:
        # Compromised ones are no longer live for _targets when expired; every marked one of these identities counts.
        credentials = list(Credential.objects.filter(identity_id__in=identities, compromised_at__isnull=False))
    Credential.objects.filter(pk__in=[c.pk for c in credentials]).update(compromised_at=None)
    lifted = list(
        ServiceIdentity.objects.filter(pk__in=identities, compromised_at__isnull=False).values_list("pk", "name")
    )
    ServiceIdentity.objects.filter(pk__in=[pk for pk, _ in lifted]).update(compromised_at=None)
    Finding.objects.filter(pk=finding.pk).update(contained_at=None, contained_by=None)
    changes_record(topics=["credential.compromised_at"], identities=identities, tools=[finding.tool_id])
    actions = [f"identity {name} released: authorize decides by its grants again" for _, name in lifted]
    after = {"credentials": [c.pk for c in credentials], "identities": [pk for pk, _ in lifted], "actions": actions}
    audit_record(actor=actor, action="finding.containment_released", obj=finding, after=after, comment=reason)
    return {"contained": False, "actions": actions}
