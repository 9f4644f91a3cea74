"""The approvals jobs (Celery beat, through `approvals.tasks`): expire due grants and stale requests, remind owners
of grants about to expire. Set-based: a few queries per batch of rows, never a query per row."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from approvals import policy, tasks
from approvals.choices import RequestStatus
from approvals.models import AccessRequest
from inventory.audit.record import audit_many
from inventory.changes import changes_record_query
from inventory.choices import GrantStatus
from inventory.models import DetectionChange, ScopeGrant

JOB = "job:approvals"
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
            expiring = ScopeGrant.objects.filter(pk__in=[pk for pk, _, _ in due])
            # An expired grant clears (or opens) grant findings of its identity now, not at the nightly scan.
            changes_record_query(topic="grant", key_type=DetectionChange.KeyType.IDENTITY, rows=expiring,
                                 field="identity_id", observed_at=now)  # fmt: skip
            expiring.update(status=GrantStatus.EXPIRED)
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
