from importlib import import_module

from django.db import migrations, models

# SQLite adds a NOT NULL column by rebuilding the table, and the rebuild drops the table's triggers: the ones that
# make revocation final (0015) and keep a grant's recorded approval from going up (0016) are put back.
REBUILT_TABLES_TRIGGERS = (
    "inventory.migrations.0015_grant_approvals_fact_changes_revocation_final",
    "inventory.migrations.0016_grant_approvals_only_go_down",
)


def reinstall_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in REBUILT_TABLES_TRIGGERS:
        module = import_module(name)
        module.uninstall(apps, schema_editor)
        module.install(apps, schema_editor)


def backfill(apps, schema_editor):
    """Existing rows: the latest fact change known, so that posture does not call every control "not scanned since"
    on the first page after the upgrade (the next scan would have cleared it anyway)."""
    latest = "GREATEST" if schema_editor.connection.vendor == "postgresql" else "MAX"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE inventory_credential SET updated_at = {latest}(created_at, COALESCE(last_rotated_at, created_at), "
            "COALESCE(revoked_at, created_at))"
        )
        cursor.execute(
            f"UPDATE inventory_scopegrant SET updated_at = {latest}(granted_at, COALESCE(revoked_at, granted_at))"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0026_gateway_one_usage_per_decision"),
    ]

    operations = [
        migrations.AddField(
            model_name="credential",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.AddField(
            model_name="scopegrant",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
    ]
