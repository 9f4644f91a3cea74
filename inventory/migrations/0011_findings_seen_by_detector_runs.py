"""A scan stops rewriting every finding it sees again: the latest run of each detector (DetectorRun) tells when its
unresolved findings were last seen, and a finding stores its own last-seen date only as of its last change.
The single-column indexes that no page or scan uses go too, since every index is written for every new finding."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Max


def record_latest_runs(apps, schema_editor):
    """Every unresolved finding was last seen by its detector's latest run; that run is the latest such date."""
    Finding = apps.get_model("inventory", "Finding")
    DetectorRun = apps.get_model("inventory", "DetectorRun")
    latest = (
        Finding.objects.exclude(status="resolved")
        .order_by()
        .values("detector")
        .annotate(ran_at=Max("recorded_last_seen_at"), scan_id=Max("last_seen_scan_id"))
    )
    DetectorRun.objects.bulk_create(DetectorRun(**row) for row in latest)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0010_protect_audit_batches"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(name="finding", options={"ordering": ["-id"]}),
        migrations.RenameField(model_name="finding", old_name="last_seen_at", new_name="recorded_last_seen_at"),
        migrations.AlterField(
            model_name="finding",
            name="recorded_last_seen_at",
            field=models.DateTimeField(
                help_text="When a scan last saw it, as of its last change (opened, reopened, resolved). While "
                "unresolved it is seen by every run of its detector: read last_seen_at from "
                "FindingQuerySet.with_last_seen()."
            ),
        ),
        migrations.CreateModel(
            name="DetectorRun",
            fields=[
                ("detector", models.CharField(max_length=64, primary_key=True, serialize=False)),
                (
                    "ran_at",
                    models.DateTimeField(help_text="The scan's clock when this detector last ran to completion."),
                ),
                (
                    "scan",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="inventory.scan",
                    ),
                ),
            ],
        ),
        migrations.RunPython(record_latest_runs, migrations.RunPython.noop),
        migrations.RemoveField(model_name="finding", name="last_seen_scan"),
        migrations.RemoveField(model_name="finding", name="opened_scan"),
        migrations.AlterField(
            model_name="finding",
            name="acknowledged_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="finding",
            name="identity",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="inventory.serviceidentity",
            ),
        ),
        migrations.AlterField(
            model_name="finding",
            name="tool",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="inventory.aitool",
            ),
        ),
        migrations.RemoveIndex(model_name="finding", name="inventory_f_detecto_276c3d_idx"),
        migrations.RemoveIndex(model_name="finding", name="inventory_f_status_5f8291_idx"),
        migrations.AddIndex(
            model_name="finding",
            index=models.Index(
                condition=models.Q(("status", "open"), _negated=True),
                fields=["status", "severity"],
                name="finding_triaged_idx",
            ),
        ),
    ]
