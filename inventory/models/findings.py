from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q

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

        own_tool = AITool.objects.filter(pk=OuterRef("tool_id"), owner=user)
        own_identity = ServiceIdentity.objects.filter(pk=OuterRef("identity_id"), owner=user)
        behind_own_tool = ToolIdentity.objects.filter(identity_id=OuterRef("identity_id"), tool__owner=user)
        return self.filter(Exists(own_tool) | Exists(own_identity) | Exists(behind_own_tool))

    def unresolved(self):
        return self.exclude(status=FindingStatus.RESOLVED)


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


class Finding(models.Model):
    """A detector's verdict on one subject, kept across scans: opened, seen again, resolved, reopened."""

    detector = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_id = models.BigIntegerField()
    tool = models.ForeignKey("inventory.AITool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    identity = models.ForeignKey(
        "inventory.ServiceIdentity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    opened_scan = models.ForeignKey(Scan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_seen_scan = models.ForeignKey(Scan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    suppressed_until = models.DateTimeField(null=True, blank=True)
    suppress_reason = models.TextField(blank=True)

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            # The fingerprint of a finding: one row per detector and subject, whatever the number of scans.
            models.UniqueConstraint(fields=["detector", "subject_type", "subject_id"], name="uniq_finding"),
        ]
        indexes = [
            models.Index(fields=["detector", "status"]),
            models.Index(fields=["tool", "status"]),
            models.Index(fields=["identity", "status"]),
            models.Index(fields=["status", "severity"]),
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
