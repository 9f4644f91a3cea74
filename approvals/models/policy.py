from django.conf import settings
from django.db import models


class PolicySettings(models.Model):
    """The switches security may flip at run time. One row; read through `PolicySettings.current()`."""

    auto_approve_low_risk = models.BooleanField(
        default=False,
        help_text="Approve read-only, non-sensitive, non-production requests of short duration without a person.",
    )
    auto_approve_max_days = models.PositiveSmallIntegerField(default=7)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "approval policy settings"
        verbose_name_plural = "approval policy settings"

    def __str__(self) -> str:
        return "Approval policy settings"

    @classmethod
    def current(cls) -> "PolicySettings":
        return cls.objects.order_by("pk").first() or cls()
