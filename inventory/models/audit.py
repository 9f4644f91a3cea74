from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an append-only record."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model._meta.verbose_name_plural} are append-only.")

    def delete(self):
        raise AppendOnlyError(f"{self.model._meta.verbose_name_plural} are append-only.")


class AppendOnlyModel(models.Model):
    """Rows are inserted once and never changed or removed."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{self._meta.verbose_name_plural} are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{self._meta.verbose_name_plural} are append-only.")


class AuditEntry(AppendOnlyModel):
    """One state change: who did what to which object, with the before and after.

    Append-only (refused by the application and, on PostgreSQL, by a trigger). The sealing job hashes
    entries in `id` order into AuditBatch rows whose digests chain to each other.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or the job or policy that acted.")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_type}:{self.object_id}"


class AuditBatch(models.Model):
    """A sealed run of entries of one stream: SHA-256 over them in id order, chained to the previous batch."""

    class Stream(models.TextChoices):
        AUDIT = "audit", "Audit entries"
        EVENTS = "events", "Access events"

    stream = models.CharField(max_length=16, choices=Stream.choices)
    seq = models.PositiveBigIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    entry_count = models.PositiveIntegerField()
    leaf_ids = models.JSONField(default=list, help_text="Entry ids in sealing order.")
    leaves = models.JSONField(default=list, help_text="SHA-256 of each entry's content, in the same order.")
    missing_ids = models.JSONField(
        blank=True,
        default=list,
        help_text="Ids absent from first_id..last_id when sealed, as [first, last] ranges.",
    )
    key_id = models.CharField(
        blank=True,
        default="",
        max_length=16,
        help_text="Id of the key that sealed it; empty for batches sealed before keys had ids (current key).",
    )
    digest = models.CharField(max_length=64)
    prev_digest = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stream", "seq"]
        constraints = [models.UniqueConstraint(fields=["stream", "seq"], name="uniq_batch_seq")]
        verbose_name_plural = "audit batches"

    def __str__(self) -> str:
        return f"{self.stream} batch {self.seq}"
