"""Posture writes: security's attestation of a control no detector assesses, in one transaction with its entry."""

from datetime import date, datetime, time

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from inventory.audit.record import audit_record
from inventory.models import AITool, Attestation, Control
from nhi_portal import roles
from nhi_portal.exceptions import PortalError

from . import evaluate


@transaction.atomic
def attestation_create(*, actor, tool: AITool, control: Control, expires_at: datetime | date, note: str) -> Attestation:
    """Security states that `tool` meets `control` until `expires_at` (a date: the start of that day, local time).

    Only for controls no detector evidences: where a detector assesses the control, its findings decide, and an
    attestation would hide them."""
    if not roles.is_security(actor):
        raise PermissionDenied("Only the security team attests controls.")
    note = (note or "").strip()
    if not note:
        raise PortalError("Say what was checked.", field="note")
    if evaluate.detectors_by_control().get(control.ref):
        raise PortalError("Detectors assess this control; fix the findings instead of attesting it.", field="control")
    if not isinstance(expires_at, datetime):
        expires_at = timezone.make_aware(datetime.combine(expires_at, time.min))
    if expires_at <= timezone.now():
        raise PortalError("The attestation must expire in the future.", field="expires_at")
    attestation = Attestation.objects.create(
        tool=tool, control=control, attested_by=actor, note=note, expires_at=expires_at
    )
    after = {"tool": tool.pk, "control": control.ref, "expires_at": expires_at}
    audit_record(actor=actor, action="control.attested", obj=attestation, after=after, comment=note)
    return attestation
