"""Audit batches are append-only too, on PostgreSQL enforced by the same trigger as entries and events.

TRUNCATE is left to the table owner: the application's database role should not own these tables in production
(see README), which keeps TRUNCATE out of its reach without breaking test-database flushes.
"""

from django.db import migrations

TABLE = "inventory_auditbatch"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION nhi_refuse_change()",
        params=None,
    )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}", params=None)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0009_event_request_id_per_kind")]

    operations = [migrations.RunPython(install, uninstall)]
