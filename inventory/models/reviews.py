from django.conf import settings
from django.db import models

from .findings import SubjectType


class FactChange(models.Model):
    """A change by an owner to a fact the rules rely on (environment, data classification, storage, third party...).

    Owners may correct their own records, but the people a rule governs must not be able to clear its findings by
    saying so: each such change stays open here, and `fact_change_unreviewed` reports it, until security reviews it.
    """

    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_id = models.BigIntegerField()
    tool = models.ForeignKey("inventory.AITool", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    identity = models.ForeignKey(
        "inventory.ServiceIdentity", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    changes = models.JSONField(help_text="{field: [before, after]} for the governed fields that changed.")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-changed_at"]
        indexes = [
            models.Index(
                fields=["subject_type", "subject_id"],
                condition=models.Q(reviewed_at__isnull=True),
                name="fact_change_unreviewed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject_type} {self.subject_id}: {', '.join(self.changes)}"
