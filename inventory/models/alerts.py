"""Event-driven detection and alerting (issue 18): the changes waiting for a targeted detection run, and every alert
delivery attempted, with its outcome."""

from django.db import models


class DetectionChange(models.Model):
    """A committed write that can open or clear findings, waiting for the targeted run that drains it.

    `key_type` / `key_id` name what changed as the targeted run narrows by it: a tool, or an identity (a credential's or
    grant's change is keyed by its identity). `topic` is what changed, "kind" or "kind.field" (inventory.changes), which
    picks the detectors that depend on it. Rows are claimed by one run (`claim`) and deleted when it is done.
    """

    class KeyType(models.TextChoices):
        TOOL = "tool", "AI tool"
        IDENTITY = "identity", "Service identity"

    key_type = models.CharField(max_length=16, choices=KeyType.choices)
    key_id = models.BigIntegerField()
    topic = models.CharField(max_length=64)
    observed_at = models.DateTimeField(help_text="When the write was made: the exposure's observed time.")
    claim = models.CharField(max_length=32, blank=True, default="", help_text="The run draining it; empty: waiting.")

    class Meta:
        indexes = [models.Index(fields=["claim", "key_type", "key_id"])]

    def __str__(self) -> str:
        return f"{self.topic} on {self.key_type} {self.key_id}"


class DetectionSchedule(models.Model):
    """One row: whether a targeted run is already queued. A burst of writes queues one run (the first write that
    finds no run queued), and the run clears this before it claims the changes, so none is left waiting. A mark older
    than `inventory.changes.SCHEDULE_STALE` belongs to a lost task and no longer holds writes back."""

    scheduled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"targeted detection queued at {self.scheduled_at}" if self.scheduled_at else "nothing queued"


class AlertDelivery(models.Model):
    """One alert sent (or being sent) through one channel to one target: a finding, or a digest of several."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    # A webhook URL often holds its own secret (Slack's do): only its origin is shown, and the URL itself is found
    # again in settings by `target_digest` when the delivery runs.
    target = models.CharField(max_length=320, help_text="E-mail address, or the webhook's origin.")
    target_digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the webhook URL.")
    findings = models.JSONField(default=list, help_text="Ids of the findings it reports.")
    digest = models.BooleanField(default=False, help_text="Several findings in one message.")
    # The run's clock: every finding it reports opened then (a digest lists only its first few ids).
    opened_at = models.DateTimeField(help_text="When the findings it reports opened.")
    payload = models.JSONField(default=dict, help_text="What is sent: the webhook body, or the mail's subject/body.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-id"])]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.channel} to {self.target} ({self.status})"
