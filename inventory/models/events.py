from django.conf import settings
from django.db import models
from django.db.models import Q

from .audit import AppendOnlyModel


class AccessEvent(AppendOnlyModel):
    """One AI action: an authorization decision or usage observed elsewhere, bound to identity, tool and human.

    The `*_ref` columns keep what the caller sent, so a deny for an unknown tool still says which.
    """

    class Decision(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"

    class Kind(models.TextChoices):
        DECISION = "decision", "Authorization decision"
        OBSERVED = "observed", "Observed usage"

    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DECISION)
    source = models.CharField(max_length=150, help_text="The gateway or connector account that reported it.")
    request_id = models.CharField(max_length=128, blank=True, help_text="The caller's id, for idempotency.")
    # tool, identity and on_behalf_of are indexed by the (column, occurred_at) indexes below, which serve every
    # lookup a single-column index would; each index is one more write on every decision.
    tool = models.ForeignKey(
        "inventory.AITool", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    tool_ref = models.CharField(max_length=200, blank=True)
    identity = models.ForeignKey(
        "inventory.ServiceIdentity", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    identity_ref = models.CharField(max_length=200, blank=True)
    credential = models.ForeignKey(
        "inventory.Credential", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    on_behalf_of_ref = models.CharField(max_length=150, blank=True)
    scope = models.ForeignKey("inventory.Scope", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    scope_ref = models.CharField(max_length=200, blank=True)
    resource = models.CharField(max_length=500, blank=True)
    decision = models.CharField(max_length=5, choices=Decision.choices)
    reason = models.CharField(max_length=64)
    grant = models.ForeignKey("inventory.ScopeGrant", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "request_id"], condition=~Q(request_id=""), name="uniq_event_request_id"
            ),
        ]
        indexes = [
            models.Index(fields=["tool", "occurred_at"]),
            models.Index(fields=["identity", "occurred_at"]),
            models.Index(fields=["decision", "occurred_at"]),
            models.Index(fields=["on_behalf_of", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.tool_ref} {self.scope_ref} ({self.reason})"


class UsageWatermark(models.Model):
    """How far the usage roll-up has read the access events; it resumes from here."""

    name = models.CharField(max_length=32, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_event_id}"
