from django.conf import settings
from django.db import models


class Framework(models.Model):
    """A control framework as published (OWASP NHI Top 10 2025, NIST CSF 2.0, ...), loaded from the catalog files."""

    key = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=40)
    catalog_revision = models.PositiveIntegerField(default=1)
    publisher = models.CharField(max_length=120, blank=True)
    source = models.TextField(blank=True, help_text="Where the control IDs and titles were checked.")
    verification = models.TextField(blank=True)
    url = models.URLField(blank=True)
    # The framework's own grouping (CSF categories, SP 800-53 families, Annex A themes, CIS controls): id -> name.
    groups = models.JSONField(default=dict, blank=True)
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.name} ({self.version})"


class Control(models.Model):
    """One control of a framework. Retired controls stay, so old snapshots and attestations keep their meaning."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    control_id = models.CharField(max_length=40)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    legacy_ids = models.JSONField(default=list, blank=True, help_text="Earlier IDs, e.g. the CSF 1.1 predecessors.")
    group = models.CharField(max_length=40, blank=True, help_text="Its family, category or theme (Framework.groups).")
    order = models.PositiveIntegerField(default=0)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["framework__key", "order", "control_id"]
        constraints = [models.UniqueConstraint(fields=["framework", "control_id"], name="uniq_control_per_framework")]

    def __str__(self) -> str:
        return f"{self.control_id} {self.title}"

    @property
    def ref(self) -> str:
        return f"{self.framework.key}:{self.control_id}"


class Attestation(models.Model):
    """Security's statement that a tool meets a control no detector can assess, until it expires."""

    tool = models.ForeignKey("inventory.AITool", on_delete=models.CASCADE, related_name="attestations")
    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="attestations")
    attested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    attested_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-attested_at"]
        indexes = [models.Index(fields=["tool", "control", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.control} attested for {self.tool_id}"


class PostureSnapshot(models.Model):
    """A day's posture of one tool against one framework (inventory.posture.evaluate has the rule).

    `assessed` counts the controls with evidence for the tool (pass or fail), `failing` those failing; `unassessed`
    the controls a detector could assess that had no evidence for this tool (nothing to examine, or not scanned since
    it changed); `attested` the controls no detector assesses that security attested. Attested controls are not in
    the pass rate."""

    day = models.DateField()
    tool = models.ForeignKey("inventory.AITool", on_delete=models.CASCADE, related_name="+")
    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="+")
    assessed = models.PositiveSmallIntegerField()
    failing = models.PositiveSmallIntegerField()
    unassessed = models.PositiveSmallIntegerField(default=0)
    attested = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "tool", "framework"], name="uniq_posture_snapshot")]
        indexes = [models.Index(fields=["framework", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.tool_id} {self.framework_id}: {self.failing}/{self.assessed} failing"


class ControlSnapshot(models.Model):
    """A day's result for one control a detector assesses, across tools: with evidence (pass or fail), failing, and
    without evidence (nothing to examine, or not scanned since the tool changed)."""

    day = models.DateField()
    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="+")
    tools_assessed = models.PositiveIntegerField()
    tools_failing = models.PositiveIntegerField()
    tools_unassessed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "control"], name="uniq_control_snapshot")]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.control_id}: {self.tools_failing}/{self.tools_assessed} failing"


class FrameworkSnapshot(models.Model):
    """A day's coverage of one framework: how much of it the portal assesses, beside the pass rate.

    `controls` in force; `assessable` of them with a detector mapped as primary evidence; `attested` of the others
    attested for at least one tool; `tools` not retired; `passing` and `failing` (tool, control) results with
    evidence, over the assessable controls; `unassessed` such results without evidence."""

    day = models.DateField()
    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="+")
    controls = models.PositiveIntegerField()
    assessable = models.PositiveIntegerField()
    attested = models.PositiveIntegerField()
    tools = models.PositiveIntegerField()
    passing = models.PositiveIntegerField()
    failing = models.PositiveIntegerField()
    unassessed = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "framework"], name="uniq_framework_snapshot")]

    def __str__(self) -> str:
        return f"{self.day} {self.framework_id}: assesses {self.assessable} of {self.controls}"

    @property
    def pass_rate(self) -> float | None:
        """Percent of (tool, control) results with evidence that pass; None without any."""
        judged = self.passing + self.failing
        return round(100 * self.passing / judged, 1) if judged else None

    @property
    def not_assessed(self) -> int:
        return self.controls - self.assessable
