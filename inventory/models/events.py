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
        LISTING = "list", "Tool listing"

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
    # What a gateway knows beyond the question. Nullable, so that events sealed before these columns existed keep
    # their leaf hashes (a NULL column is left out of the leaf).
    agent = models.CharField(
        max_length=200, null=True, blank=True, help_text="The agent acting for the human (a token's act.sub)."
    )
    action = models.CharField(
        max_length=200, null=True, blank=True, help_text="What the gateway was asked to run: the MCP tool name."
    )
    # Observed usage that a gateway reports after a call: the decision that let it run, and how it went. No database
    # constraint: events are append-only and sealed, and a month of them may be archived apart from another.
    decision_event = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+",
        db_index=False, help_text="The authorization decision this usage followed.",
    )  # fmt: skip
    outcome = models.CharField(max_length=16, null=True, blank=True, help_text="ok or error, as the gateway saw it.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # A tool listing's answers: the pairs asked and those allowed (it grants nothing).
    detail = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # On PostgreSQL the table is partitioned by month of recorded_at (migration 0028, inventory/audit/partitions).
        # These two are each partition's own unique indexes there (a partitioned table's must hold the partition
        # key), so they hold within a month; the indexes below are the parent's and cover every partition.
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "request_id"], condition=~Q(request_id=""), name="uniq_event_request_id"
            ),
            # One usage follows one allow at most (inventory.usage.ingest checks it first; this holds under races).
            models.UniqueConstraint(
                fields=["decision_event"], condition=Q(decision_event__isnull=False), name="one_usage_per_decision"
            ),
        ]
        indexes = [
            models.Index(fields=["tool", "occurred_at"]),
            models.Index(fields=["identity", "occurred_at"]),
            models.Index(fields=["decision", "occurred_at"]),
            models.Index(fields=["on_behalf_of", "occurred_at"]),
            # The audit page's filters, newest first by keyset (inventory/audit/keyset.py): (column, id) reads the
            # page straight off the index, whatever the table's size. Only for the selective filters: a common value
            # (decision allow, kind decision or observed) is found by the primary key within a few pages of rows.
            # Each is one more write per event; the time range needs none (it becomes an id range).
            models.Index(fields=["tool_ref", "id"], name="event_tool_ref_keyset"),
            models.Index(fields=["identity_ref", "id"], name="event_identity_ref_keyset"),
            models.Index(fields=["on_behalf_of_ref", "id"], name="event_human_ref_keyset"),
            models.Index(fields=["reason", "id"], name="event_reason_keyset"),
            # Written only for the rows they cover: gateway context, and denies (the rare rows security looks for).
            models.Index(fields=["action", "id"], condition=Q(action__isnull=False), name="event_action_keyset"),
            models.Index(fields=["agent", "id"], condition=Q(agent__isnull=False), name="event_agent_keyset"),
            models.Index(fields=["id"], condition=Q(decision="deny"), name="event_deny_keyset"),
            # Denies of one tool, identity or human: an investigation's first question. Combining the two indexes
            # above reads every row of a busy tool (bench/audit_pages.py: 1.5 s at 10 million events); these are
            # written for denies only.
            models.Index(fields=["tool_ref", "id"], condition=Q(decision="deny"), name="event_tool_deny_keyset"),
            models.Index(
                fields=["identity_ref", "id"], condition=Q(decision="deny"), name="event_identity_deny_keyset"
            ),
            models.Index(
                fields=["on_behalf_of_ref", "id"], condition=Q(decision="deny"), name="event_human_deny_keyset"
            ),
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
