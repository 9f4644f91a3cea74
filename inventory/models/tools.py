from django.conf import settings
from django.db import models
from django.urls import reverse

from inventory import choices
from inventory.validators import refuse_control_characters

from .querysets import ToolQuerySet


class AITool(models.Model):
    """An AI assistant, agent, copilot or bot that acts on systems through service identities."""

    name = models.CharField(max_length=200, validators=[refuse_control_characters])
    slug = models.SlugField(max_length=120, unique=True)
    kind = models.CharField(max_length=32, choices=choices.ToolKind.choices)
    vendor = models.CharField(max_length=120, blank=True, validators=[refuse_control_characters])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_tools")
    team = models.ForeignKey("inventory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="tools")
    environment = models.CharField(max_length=16, choices=choices.Environment.choices)
    data_classification = models.CharField(
        max_length=16, choices=choices.DataClassification.choices, default=choices.DataClassification.INTERNAL
    )
    status = models.CharField(max_length=16, choices=choices.ToolStatus.choices, default=choices.ToolStatus.ACTIVE)
    description = models.TextField(blank=True)
    prompt_templates = models.TextField(
        blank=True, help_text="System prompts and templates the tool uses; scanned for embedded secrets."
    )
    connector_config = models.TextField(
        blank=True, help_text="Connector or plugin configuration the tool loads; scanned for embedded secrets."
    )
    enforces_authorization = models.BooleanField(
        default=False, help_text="Its gateway asks the portal for a decision before every action."
    )
    allowed_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="usable_tools",
        blank=True,
        help_text="People the tool may act for. With allowed teams empty too, the tool may act for nobody.",
    )
    allowed_teams = models.ManyToManyField(
        "inventory.Team", related_name="usable_tools", blank=True, help_text="Teams whose members the tool may act for."
    )
    identities = models.ManyToManyField(
        "inventory.ServiceIdentity", through="inventory.ToolIdentity", related_name="tools", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ToolQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "AI tool"
        indexes = [
            models.Index(fields=["name"]),
            models.Index(fields=["owner", "name"]),
            models.Index(fields=["environment"]),
            models.Index(fields=["team"]),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("inventory:tool_detail", args=[self.pk])


class ToolIdentity(models.Model):
    """A tool acts through an identity. One identity behind two tools is the reuse finding."""

    tool = models.ForeignKey(AITool, on_delete=models.CASCADE, related_name="bindings")
    identity = models.ForeignKey("inventory.ServiceIdentity", on_delete=models.CASCADE, related_name="bindings")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tool", "identity"], name="uniq_tool_identity")]
        indexes = [models.Index(fields=["identity", "tool"])]
        verbose_name = "tool binding"

    def __str__(self) -> str:
        return f"{self.tool_id} -> {self.identity_id}"
