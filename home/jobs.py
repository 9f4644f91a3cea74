"""Whether the background jobs security relies on are keeping up: the last scan, and audit sealing."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import DateTimeField, IntegerField, Subquery, Value
from django.db.models.functions import Coalesce

from inventory.audit.sealing import lag_bound
from inventory.models import AccessEvent, AuditBatch, AuditEntry, DetectorRun, Scan

# A scan queued or running longer than this is stuck, whatever its status says.
SCAN_STUCK_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class LastScan:
    pk: int
    status: str
    created_at: datetime
    finished_at: datetime | None

    def get_status_display(self) -> str:
        return Scan.Status(self.status).label


@dataclass(frozen=True)
class JobsStatus:
    last_scan: LastScan | None
    last_detector_run: datetime | None
    scan_behind: str  # why the scan is behind, or "" when it is not
    oldest_unsealed: datetime | None
    sealing_behind: bool
    also: dict = field(default_factory=dict)  # the caller's own scalar subqueries, read in the same statement

    @property
    def behind(self) -> bool:
        return bool(self.scan_behind) or self.sealing_behind


def _oldest_unsealed(model, time_field: str, stream: str) -> Subquery:
    # By id, as inventory.audit.sealing reads it: the first id after the last sealed batch is what holds sealing up.
    sealed_up_to = AuditBatch.objects.filter(stream=stream).order_by("-seq").values("last_id")[:1]
    after = Coalesce(Subquery(sealed_up_to), Value(0), output_field=IntegerField())
    first_unsealed = model.objects.filter(pk__gt=after)
    return Subquery(first_unsealed.order_by("pk").values(time_field)[:1], output_field=DateTimeField())


def jobs_status(*, user, now: datetime, also: dict | None = None) -> JobsStatus:
    """One statement for every job clock, and for the caller's `also` scalar subqueries. They hang off the signed-in
    user's own row only because a statement needs a row to return: it always exists, and none of its columns is
    read."""
    also = also or {}
    latest_scan = Scan.objects.order_by("-id")
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            scan_id=Subquery(latest_scan.values("pk")[:1]),
            scan_status=Subquery(latest_scan.values("status")[:1]),
            scan_created=Subquery(latest_scan.values("created_at")[:1]),
            scan_finished=Subquery(latest_scan.values("finished_at")[:1]),
            detector_ran=Subquery(DetectorRun.objects.order_by("-ran_at").values("ran_at")[:1]),
            audit_wait=_oldest_unsealed(AuditEntry, "created_at", AuditBatch.Stream.AUDIT),
            events_wait=_oldest_unsealed(AccessEvent, "recorded_at", AuditBatch.Stream.EVENTS),
            **{f"also_{name}": expression for name, expression in also.items()},
        )
        .values(
            "scan_id",
            "scan_status",
            "scan_created",
            "scan_finished",
            "detector_ran",
            "audit_wait",
            "events_wait",
            *(f"also_{name}" for name in also),
        )
        .first()
    ) or {}
    scan = None
    if row.get("scan_id"):
        scan = LastScan(row["scan_id"], row["scan_status"], row["scan_created"], row["scan_finished"])
    oldest = min((t for t in (row.get("audit_wait"), row.get("events_wait")) if t), default=None)
    return JobsStatus(
        last_scan=scan,
        last_detector_run=row.get("detector_ran"),
        scan_behind=_scan_behind(scan, row.get("detector_ran"), now),
        oldest_unsealed=oldest,
        sealing_behind=bool(oldest and now - oldest > lag_bound()),
        also={name: row.get(f"also_{name}") for name in also},
    )


def _scan_behind(scan: LastScan | None, ran: datetime | None, now: datetime) -> str:
    max_age = timedelta(hours=settings.READINESS_SCAN_MAX_AGE_HOURS)
    if scan and scan.status == Scan.Status.FAILED:
        return "The last scan failed."
    if scan and scan.status in (Scan.Status.QUEUED, Scan.Status.RUNNING) and now - scan.created_at > SCAN_STUCK_AFTER:
        return f"A scan has been {scan.get_status_display().lower()} for over {SCAN_STUCK_AFTER.seconds // 60} minutes."
    if ran is None:
        return "No scan has run yet."
    if now - ran > max_age:
        return f"No detector has run for over {settings.READINESS_SCAN_MAX_AGE_HOURS} hours."
    return ""
