"""Batches record the ids absent from their range and the key that sealed them; PostgreSQL refuses TRUNCATE.

Row-level triggers (0005, 0010) do not fire on TRUNCATE, so a statement-level trigger refuses it on the entries, the
access events and the batches. Batches sealed before this migration keep an empty key id, which verify reads as the
current key: the key is not available to a migration.
"""

from django.db import migrations, models

TABLES = ("inventory_auditentry", "inventory_accessevent", "inventory_auditbatch")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        # nhi_refuse_change (0005) names TG_OP, so the message reads "TRUNCATE refused".
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION nhi_refuse_change()",
            params=None,
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0013_detector_run_unresolved_count"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditbatch",
            name="missing_ids",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Ids absent from first_id..last_id when sealed, as [first, last] ranges.",
            ),
        ),
        migrations.AddField(
            model_name="auditbatch",
            name="key_id",
            field=models.CharField(
                blank=True,
                default="",
                max_length=16,
                help_text="Id of the key that sealed it; empty for batches sealed before keys had ids (current key).",
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]
