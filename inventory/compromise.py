"""Containment's state on identities and credentials (issue 18): which credentials are compromised, and whether the
identity behind them is still contained.

Authorize (approvals.authorization_store) answers `credential_compromised` for every call through an identity whose
`compromised_at` is set: one column read in the decision statement, no subquery. This module keeps that marker equal
to its rule: set when a credential of the identity is contained; cleared once the identity has a live credential
registered since (created at or after containment, not itself compromised) and every compromised credential of it is
revoked. Every write that can satisfy that rule calls `compromise_lift` inside its own transaction (the credential
services), and the targeted detection run calls it for the identities an import or other bulk write touched, so the
marker never outlives its reason by more than one run. Security alone may clear it early, with a reason
(`inventory.detection.containment.finding_release`).
"""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from inventory.audit.record import audit_many

from .models import Credential, ServiceIdentity


def live_credentials(now: datetime):
    return Credential.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)


def credentials_mark_compromised(*, credential_ids: Iterable[int], now: datetime) -> list[int]:
    """Mark these credentials compromised (those not already marked) and contain their identities; inside the
    caller's transaction. Returns the identities contained by this call (the ones already contained keep their
    date: the replacement must be newer than the first containment)."""
    credential_ids = list(credential_ids)
    Credential.objects.filter(pk__in=credential_ids, compromised_at__isnull=True).update(compromised_at=now)
    identities = Credential.objects.filter(pk__in=credential_ids).values("identity_id")
    newly = list(
        ServiceIdentity.objects.filter(pk__in=identities, compromised_at__isnull=True).values_list("pk", flat=True)
    )
    ServiceIdentity.objects.filter(pk__in=newly).update(compromised_at=now)
    return newly


def compromise_lift(*, identity_ids: Iterable[int] | QuerySet | None = None, actor_label: str = "system") -> list[int]:
    """Clear the marker of the given contained identities (all, if None) that now meet the rule; inside the caller's
    transaction, one UPDATE and one audit entry per identity cleared. Returns their ids."""
    now = timezone.now()
    still_exposed = Credential.objects.filter(
        identity=OuterRef("pk"), compromised_at__isnull=False, revoked_at__isnull=True
    )
    replacement = live_credentials(now).filter(
        identity=OuterRef("pk"), compromised_at__isnull=True, created_at__gte=OuterRef("compromised_at")
    )
    contained = ServiceIdentity.objects.filter(compromised_at__isnull=False)
    if identity_ids is not None:
        # A queryset stays a subquery (a targeted run's changed identities); anything else is a list of ids.
        contained = contained.filter(pk__in=identity_ids if isinstance(identity_ids, QuerySet) else list(identity_ids))
    ready = list(contained.filter(~Exists(still_exposed), Exists(replacement)).values_list("pk", "name"))
    if not ready:
        return []
    ServiceIdentity.objects.filter(pk__in=[pk for pk, _ in ready]).update(compromised_at=None)
    audit_many(
        action="identity.containment_lifted",
        object_type="inventory.serviceidentity",
        objects=ready,
        before={"compromised": True},
        after={"compromised": False},
        actor_label=actor_label,
        comment="A new credential is registered and every compromised one is revoked.",
    )
    return [pk for pk, _ in ready]
