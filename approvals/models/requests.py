from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from approvals.choices import DecisionKind, RequestStatus
from nhi_portal import roles


class AccessRequestQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Security and managers see every request; owners see the ones they filed or that concern their tools."""
        if not roles.may_use_portal(user):
            return self.none()
        if roles.sees_everything(user):
            return self
        return self.filter(Q(requester=user) | Q(tool__owner=user))

    def pending(self):
        return self.filter(status=RequestStatus.PENDING)


class AccessRequest(models.Model):
    """An owner asks for scopes for the identity one of their AI tools acts through."""

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests")
    tool = models.ForeignKey("inventory.AITool", on_delete=models.PROTECT, related_name="access_requests")
    identity = models.ForeignKey("inventory.ServiceIdentity", on_delete=models.PROTECT, related_name="access_requests")
    scopes = models.ManyToManyField("inventory.Scope", through="approvals.RequestedScope", related_name="+")
    justification = models.TextField()
    duration_days = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    required_approvals = models.PositiveSmallIntegerField()
    policy_rules = models.JSONField(default=list, help_text="Keys of the policy rules that matched when filed.")
    renewal_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewals")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["requester", "status"])]

    def __str__(self) -> str:
        return f"Request #{self.pk} for {self.identity_id}"

    def get_absolute_url(self) -> str:
        return reverse("approvals:request_detail", args=[self.pk])

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING


class RequestedScope(models.Model):
    """One scope in a request, optionally limited to a resource pattern."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="items")
    scope = models.ForeignKey("inventory.Scope", on_delete=models.PROTECT, related_name="+")
    resource_constraint = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "scope", "resource_constraint"], name="uniq_requested_scope")
        ]

    def __str__(self) -> str:
        return f"{self.scope_id} {self.resource_constraint}".strip()


class Decision(models.Model):
    """An approval or denial by a security approver, or an approval by the policy itself."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="decisions")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=DecisionKind.choices)
    comment = models.TextField(blank=True)
    policy_rule = models.CharField(max_length=64, blank=True, help_text="Set when the policy decided, not a person.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # The database itself keeps one person from deciding twice on the same request.
            models.UniqueConstraint(
                fields=["request", "approver"], condition=Q(approver__isnull=False), name="uniq_decision_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on #{self.request_id}"


class GrantIssue(models.Model):
    """Links a grant to the request whose final approval issued it."""

    request = models.ForeignKey(AccessRequest, on_delete=models.PROTECT, related_name="issues")
    grant = models.OneToOneField("inventory.ScopeGrant", on_delete=models.CASCADE, related_name="issue")
    approved_until = models.DateTimeField(null=True, help_text="The end of the duration the approval allowed.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"grant {self.grant_id} from request {self.request_id}"
