"""Writes on findings: security acknowledges or suppresses them (one or many at once), with an audit entry each.
Opening and resolving belong to the scan (inventory.detection.scan)."""

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from inventory.audit.record import audit_many
from inventory.facts import fact_changes_confirm
from inventory.models import Finding, FindingStatus
from nhi_portal import roles
from nhi_portal.exceptions import Conflict, PortalError

MAX_SUPPRESSION = timedelta(days=366)


def _lock(actor, ids: list[int]) -> list[Finding]:
    if not roles.is_security(actor):
        raise PermissionDenied("Only the security team triages findings.")
    if not ids:
        raise PortalError("Pick at least one finding.", field="findings")
    findings = list(Finding.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    if len(findings) != len(set(ids)):
        raise PortalError("Some of these findings do not exist.", field="findings")
    if done := [f.pk for f in findings if f.status == FindingStatus.RESOLVED]:
        raise Conflict(f"Resolved findings cannot be triaged: {', '.join(map(str, done))}.")
    return findings


def _audit(actor, action: str, findings: list[Finding], after: dict, comment: str = "") -> None:
    audit_many(
        action=action,
        object_type="inventory.finding",
        objects=[(f.pk, f.fingerprint) for f in findings],
        before=None,
        after=after,
        actor_label=actor.get_username(),
        comment=comment,
    )


@transaction.atomic
def findings_acknowledge(*, actor, ids: list[int]) -> int:
    findings = _lock(actor, ids)
    now = timezone.now()
    Finding.objects.filter(pk__in=[f.pk for f in findings]).update(
        status=FindingStatus.ACKNOWLEDGED, acknowledged_by=actor, acknowledged_at=now
    )
    _audit(actor, "finding.acknowledged", findings, {"status": FindingStatus.ACKNOWLEDGED})
    return len(findings)


@transaction.atomic
def findings_suppress(*, actor, ids: list[int], reason: str, until: datetime) -> int:
    """Hide findings until a date, with a reason. A scan that still sees them after that date reopens them."""
    reason = (reason or "").strip()
    if not reason:
        raise PortalError("Give a reason for suppressing.", field="reason")
    now = timezone.now()
    if until is None or until <= now:
        raise PortalError("The end date must be in the future.", field="until")
    if until > now + MAX_SUPPRESSION:
        raise PortalError("Suppress for at most a year; then look again.", field="until")
    findings = _lock(actor, ids)
    Finding.objects.filter(pk__in=[f.pk for f in findings]).update(
        status=FindingStatus.SUPPRESSED, suppressed_until=until, suppress_reason=reason
    )
    _audit(actor, "finding.suppressed", findings, {"status": FindingStatus.SUPPRESSED, "until": until}, reason)
    return len(findings)


FACT_CHANGE_DETECTOR = "fact_change_unreviewed"


@transaction.atomic
def findings_confirm_changes(*, actor, ids: list[int], comment: str = "") -> int:
    """Security (not the change's author) has checked a held risk-lowering change against the system itself: the
    change is applied, and the finding that held it is resolved."""
    findings = _lock(actor, ids)
    if [f for f in findings if f.detector != FACT_CHANGE_DETECTOR]:
        raise PortalError("Only findings about an unreviewed change have a change to confirm.", field="findings")
    for finding in findings:
        fact_changes_confirm(
            actor=actor, subject_type=finding.subject_type, subject_id=finding.subject_id, comment=comment
        )
    now = timezone.now()
    Finding.objects.filter(pk__in=[f.pk for f in findings]).update(status=FindingStatus.RESOLVED, resolved_at=now)
    _audit(actor, "finding.change_confirmed", findings, {"status": FindingStatus.RESOLVED}, comment)
    return len(findings)
