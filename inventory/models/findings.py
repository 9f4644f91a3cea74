from django.conf import settings
from django.db import models
from django.db.models import Case, DateTimeField, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest

from nhi_portal import roles


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SUPPRESSED = "suppressed", "Suppressed"
    RESOLVED = "resolved", "Resolved"


# Most severe first, as a number: the domain's order, not the alphabet's. One expression shared by the queries that
# order by it and the index that serves them (PostgreSQL uses an expression index only for the very same expression).
SEVERITY_RANK = Case(
    When(severity=Severity.CRITICAL, then=Value(0)),
    When(severity=Severity.HIGH, then=Value(1)),
    When(severity=Severity.MEDIUM, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


class SubjectType(models.TextChoices):
    TOOL = "tool", "AI tool"
    IDENTITY = "identity", "Service identity"
    CREDENTIAL = "credential", "Credential"
    GRANT = "grant", "Grant"


class FindingQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Security and managers see every finding; owners see the ones on their tools and identities."""
        if not roles.may_use_portal(user):
            return self.none()
        if roles.sees_everything(user):
            return self
        from .identities import ServiceIdentity
        from .tools import AITool, ToolIdentity

        # Uncorrelated subqueries: PostgreSQL hashes the owner's few thousand ids once, where correlated EXISTS
        # probed three indexes per finding (the owner with the most tools: 0.5-0.9 s against 0.2 s over 655,000).
        own_tools = AITool.objects.filter(owner=user).values("pk")
        own_identities = ServiceIdentity.objects.filter(owner=user).values("pk")
        behind_own_tool = ToolIdentity.objects.filter(tool__owner=user).values("identity_id")
        return self.filter(Q(tool__in=own_tools) | Q(identity__in=own_identities) | Q(identity__in=behind_own_tool))

    def unresolved(self):
        return self.exclude(status=FindingStatus.RESOLVED)

    def with_last_seen(self):
        """Annotate `last_seen_at`. A scan does not rewrite the findings it sees again (at a million credentials that
        rewrite was most of a scan's time), so an unresolved finding was last seen by its detector's latest run, and
        only a resolved one keeps its own date. The run is a primary-key lookup in a table of a dozen rows, inside
        the same query: no extra query on any page."""
        recorded = F("recorded_last_seen_at")
        latest_run = DetectorRun.objects.filter(detector=OuterRef("detector")).values("ran_at")[:1]
        # A targeted run (inventory.detection.targeted) opens a finding after its detector's latest full run: then
        # its own date is the later one.
        seen = Greatest(Coalesce(Subquery(latest_run, output_field=DateTimeField()), recorded), recorded)
        resolved = When(status=FindingStatus.RESOLVED, then=recorded)
        return self.annotate(last_seen_at=Case(resolved, default=seen, output_field=DateTimeField()))


class Scan(models.Model):
    """One run of the detectors: its progress and, per detector, what it opened, still sees and resolved."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    detectors = models.JSONField(default=list, help_text="Detector keys to run; empty means all.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Detectors finished so far.")
    total = models.PositiveSmallIntegerField(default=0)
    counts = models.JSONField(default=dict, help_text="Per detector: opened, still_open, resolved, ms, error.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The database guarantees that two scans never run at once.
            models.UniqueConstraint(fields=["status"], condition=Q(status="running"), name="one_running_scan"),
        ]

    def __str__(self) -> str:
        return f"Scan #{self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class DetectorRun(models.Model):
    """The latest successful run of each detector. Every finding it has not resolved was seen by that run, which
    is how a finding's last-seen date is known without a scan writing to every finding it sees again."""

    detector = models.CharField(max_length=64, primary_key=True)
    ran_at = models.DateTimeField(help_text="The scan's clock when this detector last ran to completion.")
    scan = models.ForeignKey(Scan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Only a detector's run resolves or reopens its findings (triage never touches resolved ones), so this stays
    # exact between runs; the findings page reads it instead of counting hundreds of thousands of rows.
    unresolved = models.PositiveIntegerField(default=0, help_text="Its unresolved findings after that run.")

    def __str__(self) -> str:
        return f"{self.detector} at {self.ran_at:%Y-%m-%d %H:%M}"


class Finding(models.Model):
    """A detector's verdict on one subject, kept across scans: opened, seen again, resolved, reopened."""

    detector = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_id = models.BigIntegerField()
    # Not indexed alone: the (tool, status) and (identity, status) indexes serve lookups by either. No database
    # constraint: the scan copies these ids from the rows it has just read, and checking them again cost a full
    # scan's commit 14 s at a million credentials; Django's SET_NULL, which runs in Python, still applies.
    tool = models.ForeignKey(
        "inventory.AITool",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    identity = models.ForeignKey(
        "inventory.ServiceIdentity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    first_seen_at = models.DateTimeField()
    recorded_last_seen_at = models.DateTimeField(
        help_text="When a scan last saw it, as of its last change (opened, reopened, resolved). While unresolved it "
        "is seen by every run of its detector: read last_seen_at from FindingQuerySet.with_last_seen()."
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Not indexed: only deleting a user looks findings up by it.
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    suppressed_until = models.DateTimeField(null=True, blank=True)
    suppress_reason = models.TextField(blank=True)
    # The response clock (issue 18): when the write or import that revealed it happened, when it (last) opened,
    # when the alert about that opening was queued and first delivered, and when it was contained.
    observed_at = models.DateTimeField(null=True, blank=True, help_text="When the change that revealed it was made.")
    opened_at = models.DateTimeField(null=True, blank=True, help_text="When it last opened (new or reopened).")
    alert_queued_for = models.DateTimeField(
        null=True, blank=True, help_text="The opening (opened_at) an alert was queued for: one alert per opening."
    )
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="When an alert about it was first delivered.")
    contained_at = models.DateTimeField(null=True, blank=True)
    contained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            # The fingerprint of a finding: one row per detector and subject, whatever the number of scans.
            models.UniqueConstraint(fields=["detector", "subject_type", "subject_id"], name="uniq_finding"),
        ]
        # Each index is written for every new finding, so only those the pages and the scan read. Lookups by
        # detector use the unique constraint's leading column.
        indexes = [
            # By tool and by identity, with severity in the key and the columns an owner's to-do list reads included,
            # so an owner's findings are counted from these indexes alone (home.owner, selectors.open_finding_ids).
            models.Index(fields=["tool", "status", "severity"], include=["identity", "id"], name="finding_tool_idx"),
            models.Index(fields=["identity", "status", "severity"], include=["id"], name="finding_identity_idx"),
            # Open findings most severe first, then the longest open: the findings list's default order, and the
            # home pages' to-do lists, which walk it and stop after a few rows.
            models.Index(
                SEVERITY_RANK,
                F("first_seen_at"),
                F("id"),
                include=["tool", "identity"],
                condition=Q(status="open"),
                name="finding_open_rank_idx",
            ),
            # The triaged and resolved few, for the status filter; open findings are most rows, read in full anyway.
            models.Index(fields=["status", "severity"], condition=~Q(status="open"), name="finding_triaged_idx"),
            # The few a response measure applies to (observed, or contained), by opening: the response clock ranks
            # them on the security home (detection/measures.py) without reading the findings scans opened.
            models.Index(
                fields=["opened_at"],
                condition=Q(observed_at__isnull=False) | Q(contained_at__isnull=False),
                name="finding_response_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.detector} on {self.subject_type} {self.subject_id}"

    @property
    def fingerprint(self) -> str:
        return f"{self.detector}:{self.subject_type}:{self.subject_id}"


class ToolSecretMatch(models.Model):
    """A secret found by detect-secrets in a tool's prompt templates or connector configuration. Redacted."""

    tool = models.ForeignKey("inventory.AITool", on_delete=models.CASCADE, related_name="secret_matches")
    field = models.CharField(max_length=32)
    line_number = models.PositiveIntegerField()
    secret_type = models.CharField(max_length=100)
    redacted = models.CharField(max_length=200, help_text="The line with the secret masked; never the secret.")
    found_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tool_id", "field", "line_number"]

    def __str__(self) -> str:
        return f"{self.secret_type} in {self.field}:{self.line_number}"
