"""Discovery: what the systems that issue identities say exists, and where each discovered object came from.

A `SourceRun` is one import of a provider's export. A `SourceObject` is the provenance of one identity or credential
the sources list, keyed by the provider's own identifier, so a re-import finds it again whatever it is called in the
portal. An `AIToolSuggestion` is an AI tool the catalog recognised among discovered identities, waiting for security.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class SourceRun(models.Model):
    """One applied import of a provider's export: its counts, warnings, who ran it and the file's digest."""

    kind = models.CharField(max_length=48)
    account = models.CharField(max_length=200, blank=True, help_text="Account, org or tenant the file is from.")
    full = models.BooleanField(default=False, help_text="What the file no longer lists was marked gone at the source.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150)
    file_digest = models.CharField(max_length=64, help_text="SHA-256 of the file as received.")
    file_bytes = models.PositiveBigIntegerField(default=0)
    counts = models.JSONField(default=dict)
    warnings = models.JSONField(default=list)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["kind", "account", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.account or '(no account)'} at {self.started_at:%Y-%m-%d %H:%M}"


class SourceObject(models.Model):
    """Provenance of one discovered identity or credential: which source and account, first and last seen there.

    `digest` is a hash of what the source said about the object last time: an unchanged row is recognised from it
    without reading the object, so re-importing an unchanged file reads one narrow table and writes nothing.
    """

    class ObjectType(models.TextChoices):
        IDENTITY = "identity", "Identity"
        CREDENTIAL = "credential", "Credential"

    provider = models.CharField(max_length=80)
    object_type = models.CharField(max_length=16, choices=ObjectType.choices)
    external_id = models.CharField(max_length=512)
    kind = models.CharField(max_length=48, help_text="The source kind that listed it.")
    account = models.CharField(max_length=200, blank=True)
    identity = models.ForeignKey("inventory.ServiceIdentity", on_delete=models.CASCADE, related_name="sources")
    credential = models.ForeignKey(
        "inventory.Credential", null=True, blank=True, on_delete=models.CASCADE, related_name="sources"
    )
    digest = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(help_text="When a run last found it changed, new or back.")
    first_run = models.ForeignKey(SourceRun, null=True, on_delete=models.SET_NULL, related_name="+")
    last_run = models.ForeignKey(SourceRun, null=True, on_delete=models.SET_NULL, related_name="+")
    gone_at = models.DateTimeField(null=True, blank=True, help_text="A full import no longer listed it.")
    gone_reason = models.CharField(max_length=255, blank=True)
    owner_hint = models.CharField(max_length=255, blank=True, help_text="Owner the file names (login, e-mail, id).")
    # What the source revealed that detectors read. Unknown last use is kept apart from "never used".
    last_use_known = models.BooleanField(default=True, help_text="The source reports last use for this object.")
    is_root = models.BooleanField(default=False)
    exposed = models.BooleanField(default=False, help_text="The provider says the secret was exposed.")
    legacy_token = models.BooleanField(default=False, help_text="A long-lived, secret-based token.")
    attributes = models.JSONField(default=dict, help_text="Observed facts (permissions...). They authorize nothing.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "object_type", "external_id"], name="uniq_source_object"),
        ]
        indexes = [
            models.Index(fields=["kind", "account"], condition=Q(gone_at__isnull=True), name="source_object_listed"),
        ]
        # No Meta index on identity or credential: their foreign keys are indexed already (db_index), and a second
        # copy of each cost a 100,000-user import 420,000 index insertions for nothing.

    def __str__(self) -> str:
        return f"{self.provider} {self.external_id}"


class AIToolSuggestion(models.Model):
    """An AI tool the catalog recognised among discovered identities; security accepts or dismisses it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"

    catalog_key = models.CharField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    vendor = models.CharField(max_length=120, blank=True)
    tool_kind = models.CharField(max_length=32)
    catalog_version = models.CharField(max_length=32)
    identities = models.ManyToManyField("inventory.ServiceIdentity", related_name="ai_suggestions", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was dismissed.")
    tool = models.ForeignKey("inventory.AITool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["status", "name"]

    def __str__(self) -> str:
        return f"Suggested AI tool: {self.name}"
