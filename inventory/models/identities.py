from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
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
    # Containment (issue 18): set when a credential of this identity is contained, cleared by inventory.compromise
    # once a credential registered since is live and every compromised one is revoked. Authorize reads this column
    # alone (reason `credential_compromised`), so the decision statement stays one cheap read.
    compromised_at = models.DateTimeField(null=True, blank=True, help_text="Contained: authorize denies until cleared.")
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
    compromised_at = models.DateTimeField(
        null=True, blank=True, help_text="Marked compromised by containment; it must be revoked."
    )
    # When a fact of it last changed (storage, expiry, revocation...): posture reads a detector's silence as evidence
    # only when it ran after this. Use and compromise marks are not such facts and leave it alone.
    updated_at = models.DateTimeField(auto_now=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["identity_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["identity", "fingerprint"], name="uniq_credential_per_identity"),
        ]
        indexes = [
            models.Index(fields=["fingerprint"]),
            # Live credentials by what makes them due for rotation, each walked in order by the home pages' to-do
            # lists (soonest to expire, longest unrotated, compromised) and stopping after a few.
            models.Index(
                fields=["expires_at"],
                condition=Q(revoked_at__isnull=True, expires_at__isnull=False),
                name="credential_live_expiry_idx",
            ),
            models.Index(
                Coalesce("last_rotated_at", "created_at"),
                condition=Q(revoked_at__isnull=True),
                name="credential_live_rotated_idx",
            ),
            models.Index(
                fields=["compromised_at"],
                condition=Q(revoked_at__isnull=True, compromised_at__isnull=False),
                name="credential_compromised_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} …{self.last4}"
