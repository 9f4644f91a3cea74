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


class AuditCheckpoint(models.Model):
    """How far verification has got in one stream: the last batch verified, its digest and the entries checked so far.

    The next incremental run starts here, so it costs what was sealed since. The row carries an HMAC under the seal key
    (inventory/audit/checkpoint.py): someone who can write to the database but does not hold the key cannot move it
    past batches that were never verified; moving it back (or deleting it) only makes the next run longer."""

    stream = models.CharField(max_length=16, choices=AuditBatch.Stream.choices, unique=True)
    batch_seq = models.PositiveBigIntegerField(default=0)
    batch_digest = models.CharField(max_length=64)
    last_id = models.BigIntegerField(default=0)
    checked = models.PositiveBigIntegerField(default=0, help_text="Entries verified intact up to batch_seq.")
    anchor_position = models.PositiveBigIntegerField(default=0, help_text="Where the anchor was read up to.")
    open_watches = models.JSONField(
        default=list, blank=True, help_text="Anchor watches that reach past last_id, settled by later batches."
    )
    verified_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    mac = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.stream} verified to batch {self.batch_seq}"


class AuditVerification(models.Model):
    """One verification run, full or incremental: queued by a person or the schedule, run by a worker, with progress.

    Pages and the API show the latest finished run; nothing re-hashes inside a request. `mac` (seal key) covers the
    verdict so that a database writer cannot turn a failed run into a passed one."""

    class Kind(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=150, help_text="Username, or the job that asked.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    batches_done = models.PositiveBigIntegerField(default=0)
    batches_total = models.PositiveBigIntegerField(default=0)
    ok = models.BooleanField(null=True)
    checked = models.PositiveBigIntegerField(default=0)
    first_bad = models.BigIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="The verdict: stream, batch, problem, problems.")
    seconds = models.FloatField(null=True, blank=True)
    mac = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "kind"], name="audit_verification_status")]

    def __str__(self) -> str:
        return f"{self.kind} verification {self.pk} ({self.status})"


class ExportCursor(models.Model):
    """How far a push sink (SIEM) has delivered the export stream, and how it went last time."""

    name = models.CharField(max_length=32, unique=True)
    cursor = models.CharField(max_length=128, blank=True)
    delivered = models.PositiveBigIntegerField(default=0, help_text="Lines delivered so far.")
    delivered_through = models.DateTimeField(null=True, blank=True, help_text="Time of the newest line delivered.")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.cursor}"


class AuditArchive(models.Model):
    """A month of one stream archived with its sealed batches and anchor records (inventory/audit/retention.py).

    Written once the archive was read back from the storage and verified; `mac` (seal key) covers what it says, and
    the anchor holds the same record with the file's SHA-256, so the rows its batches cover may be missing later."""

    stream = models.CharField(max_length=16, choices=AuditBatch.Stream.choices)
    month = models.DateField(help_text="The month archived (its first day), by the time the portal recorded rows.")
    first_seq = models.PositiveBigIntegerField()
    last_seq = models.PositiveBigIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    rows = models.PositiveBigIntegerField()
    name = models.CharField(max_length=255, help_text="Where the storage keeps the file.")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    key_id = models.CharField(max_length=16)
    mac = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stream", "first_seq"]
        constraints = [models.UniqueConstraint(fields=["stream", "first_seq"], name="uniq_archive_first_batch")]

    def __str__(self) -> str:
        return f"{self.stream} archive {self.month:%Y-%m} (batches {self.first_seq}-{self.last_seq})"


class ArchivedPartition(AppendOnlyModel):
    """A month's partition of the access events, dropped once every row in it was in a verified archive.

    PostgreSQL only (inventory/audit/partitions.py). The retention job writes this row, in the transaction that detaches
    and drops the partition; the database's guard (migration audit_partition_events) refuses DETACH or DROP of an event
    partition that has no row here. Someone who writes a row here by hand gets past that guard, not past `verify`: the
    rows of a sealed batch may be missing only where an AuditArchive whose MAC holds under the seal key covers it."""

    table_name = models.CharField(max_length=63, unique=True)
    range_start = models.DateTimeField(help_text="The partition's lower bound (recorded_at), inclusive.")
    range_end = models.DateTimeField(help_text="Its upper bound, exclusive.")
    first_id = models.BigIntegerField(null=True, blank=True)
    last_id = models.BigIntegerField(null=True, blank=True)
    rows = models.PositiveBigIntegerField()
    archives = models.JSONField(default=list, help_text="The archives that hold its rows: [{id, name, sha256}].")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["range_start"]

    def __str__(self) -> str:
        return f"{self.table_name} (dropped, {self.rows} rows archived)"
