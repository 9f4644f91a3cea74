"""On PostgreSQL the database itself refuses UPDATE and DELETE on the audit trail and the access events."""

from django.db import migrations

TABLES = ("inventory_auditentry", "inventory_accessevent")

FUNCTION = """
CREATE OR REPLACE FUNCTION nhi_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION nhi_refuse_change()"
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS nhi_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("inventory", "0004_access_events_and_sealing")]

    operations = [migrations.RunPython(install, uninstall)]
