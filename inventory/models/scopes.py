from django.db import models
from django.db.models import Q

from inventory import choices
from inventory.validators import refuse_control_characters

from .querysets import GrantQuerySet


class Scope(models.Model):
    """A permission a provider can grant, with how much harm its misuse could do."""

    provider = models.CharField(max_length=80)
    name = models.CharField(
        max_length=200,
        unique=True,
        validators=[refuse_control_characters],
        help_text="Unique, e.g. github:contents:read.",
    )
    risk = models.CharField(max_length=8, choices=choices.ScopeRisk.choices)
    sensitive = models.BooleanField(default=False, help_text="Reaches personal, customer or secret data.")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["provider", "name"]

    def __str__(self) -> str:
        return self.name


class ScopeGrant(models.Model):
    """A scope held by an identity, optionally for one tool and limited to a resource pattern."""

    identity = models.ForeignKey("inventory.ServiceIdentity", on_delete=models.CASCADE, related_name="grants")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="grants")
    tool = models.ForeignKey(
        "inventory.AITool", null=True, blank=True, on_delete=models.SET_NULL, related_name="grants"
    )
    status = models.CharField(max_length=16, choices=choices.GrantStatus.choices, default=choices.GrantStatus.ACTIVE)
    resource_constraint = models.CharField(
        max_length=255, blank=True, help_text="Resource pattern the grant is limited to; empty means any."
    )
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True)
    # The approval behind the grant, as the workflow recorded it when it issued the grant. Authorize holds it against
    # the policy as it is at decision time: a grant approved by one person for a dev tool stops when the tool moves to
    # production. Zero and no policy approval: observed (imported) or issued outside the workflow; it never allows.
    approvals = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Distinct security approvers whose approval issued this grant."
    )
    approved_by_policy = models.BooleanField(
        default=False, editable=False, help_text="Issued by the low-risk auto-approval rule, not by a person."
    )
    expiry_reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When a fact of it last changed (status, expiry, constraint...), for posture as on Credential.
    updated_at = models.DateTimeField(auto_now=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["identity", "scope", "resource_constraint"],
                condition=Q(status="active"),
                name="uniq_active_grant",
            ),
        ]
        indexes = [
            models.Index(fields=["identity", "status"]),
            models.Index(fields=["tool", "status"]),
            models.Index(fields=["status", "expires_at"]),
            # Active grants per scope, counted from the index alone (grants by risk on the home pages).
            models.Index(fields=["scope"], condition=models.Q(status="active"), name="grant_active_scope_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} for {self.identity}"
