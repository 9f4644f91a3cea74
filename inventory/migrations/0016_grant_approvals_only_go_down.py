"""A grant's recorded approval can be lowered (auto-approval switched off) but never raised after it was issued: a
database writer who sets approvals = 2 on an imported grant would otherwise make it authorize."""

from django.db import migrations

RAISED = "NEW.approvals > OLD.approvals OR (NEW.approved_by_policy AND NOT OLD.approved_by_policy)"
TABLE = "inventory_scopegrant"

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION nhi_refuse_approval_raise() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%: a grant''s approval is recorded when it is issued (row %)', TG_TABLE_NAME, OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_approval_recorded BEFORE UPDATE ON {TABLE} FOR EACH ROW "
            f"WHEN ({RAISED}) EXECUTE FUNCTION nhi_refuse_approval_raise()",
            params=None,
        )
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_approval_recorded BEFORE UPDATE ON {TABLE} FOR EACH ROW WHEN {RAISED} "
            f"BEGIN SELECT RAISE(ABORT, '{TABLE}: a grant''s approval is recorded when it is issued'); END",
            params=None,
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_approval_recorded ON {TABLE}", params=None)
        schema_editor.execute("DROP FUNCTION IF EXISTS nhi_refuse_approval_raise()", params=None)
    else:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_approval_recorded", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0015_grant_approvals_fact_changes_revocation_final"),
        ("approvals", "0004_backfill_grant_approvals"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
