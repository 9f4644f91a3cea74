from django.conf import settings
from django.db import models
from django.urls import reverse

from inventory import choices
from inventory.validators import refuse_control_characters

from .querysets import CredentialQuerySet, IdentityQuerySet


class ServiceIdentity(models.Model):
    """A non-human identity (service account, API key, OAuth client...) that tools act through."""

    name = models.CharField(max_length=200, unique=True, validators=[refuse_control_characters])
    kind = models.CharField(max_length=32, choices=choices.IdentityKind.choices)
    provider = models.CharField(
        max_length=80,
        validators=[refuse_control_characters],
        help_text="Where the identity lives, e.g. github, aws, jira.",
    )
    external_id = models.CharField(max_length=255, blank=True, validators=[refuse_control_characters])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_identities")
    environment = models.CharField(max_length=16, choices=choices.Environment.choices)
    third_party = models.BooleanField(default=False, help_text="Issued to or held by an outside vendor.")
    status = models.CharField(
        max_length=16, choices=choices.IdentityStatus.choices, default=choices.IdentityStatus.ACTIVE
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    interactive_use_seen = models.BooleanField(
        default=False, help_text="A human signed in interactively with this identity."
    )
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IdentityQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "service identity"
        verbose_name_plural = "service identities"
        indexes = [
            models.Index(fields=["owner", "name"]),
            # The owner's exact count: their own ids come from the index alone (IdentityQuerySet.count).
            models.Index(fields=["owner", "id"]),
            models.Index(fields=["environment"]),
            models.Index(fields=["provider"]),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("inventory:identity_detail", args=[self.pk])


class Credential(models.Model):
    """A secret of an identity, known only by its keyed fingerprint and last four characters."""

    identity = models.ForeignKey(ServiceIdentity, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=32, choices=choices.CredentialKind.choices)
    fingerprint = models.CharField(max_length=80, help_text="Keyed SHA-256 of the secret; the secret is never kept.")
    last4 = models.CharField(max_length=4, blank=True)
    storage = models.CharField(
        max_length=32, choices=choices.CredentialStorage.choices, default=choices.CredentialStorage.UNKNOWN
    )
    created_at = models.DateTimeField()
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["identity_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["identity", "fingerprint"], name="uniq_credential_per_identity"),
        ]
        indexes = [models.Index(fields=["fingerprint"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} …{self.last4}"
