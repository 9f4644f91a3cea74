"""Grants carry the approval they were issued under; owners' changes to governed facts wait for review; and
revocation is final in the database itself, whatever path writes (a service, import, the admin, a shell).
"""

import django.db.models.deletion
import inventory.validators
from django.conf import settings
from django.db import migrations, models

# A revoked grant keeps status 'revoked' and its revoked_at; a revoked credential keeps its revoked_at.
GRANT_UNREVOKED = "OLD.status = 'revoked' AND (NEW.status <> 'revoked' OR NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)"
CREDENTIAL_UNREVOKED = "OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at"
GUARDS = (("inventory_scopegrant", GRANT_UNREVOKED), ("inventory_credential", CREDENTIAL_UNREVOKED))

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION nhi_refuse_unrevoke() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%: revocation is final (row %)', TG_TABLE_NAME, OLD.id USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
    for table, condition in GUARDS:
        if vendor == "postgresql":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_revocation_final BEFORE UPDATE ON {table} FOR EACH ROW "
                f"WHEN ({condition}) EXECUTE FUNCTION nhi_refuse_unrevoke()",
                params=None,
            )
        elif vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_revocation_final BEFORE UPDATE ON {table} FOR EACH ROW "
                f"WHEN {condition.replace('IS DISTINCT FROM', 'IS NOT')} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: revocation is final'); END",
                params=None,
            )


def uninstall(apps, schema_editor):
    for table, _ in GUARDS:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_revocation_final ON {table}", params=None)
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_revocation_final", params=None)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS nhi_refuse_unrevoke()", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0014_audit_chain_anchor'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='scopegrant',
            name='approvals',
            field=models.PositiveSmallIntegerField(default=0, editable=False, help_text='Distinct security approvers whose approval issued this grant.'),
        ),
        migrations.AddField(
            model_name='scopegrant',
            name='approved_by_policy',
            field=models.BooleanField(default=False, editable=False, help_text='Issued by the low-risk auto-approval rule, not by a person.'),
        ),
        migrations.AlterField(
            model_name='aitool',
            name='name',
            field=models.CharField(max_length=200, validators=[inventory.validators.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='aitool',
            name='vendor',
            field=models.CharField(blank=True, max_length=120, validators=[inventory.validators.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='scope',
            name='name',
            field=models.CharField(help_text='Unique, e.g. github:contents:read.', max_length=200, unique=True, validators=[inventory.validators.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='serviceidentity',
            name='external_id',
            field=models.CharField(blank=True, max_length=255, validators=[inventory.validators.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='serviceidentity',
            name='name',
            field=models.CharField(max_length=200, unique=True, validators=[inventory.validators.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='serviceidentity',
            name='provider',
            field=models.CharField(help_text='Where the identity lives, e.g. github, aws, jira.', max_length=80, validators=[inventory.validators.refuse_control_characters]),
        ),
        migrations.AlterField(
            model_name='team',
            name='name',
            field=models.CharField(max_length=120, unique=True, validators=[inventory.validators.refuse_control_characters]),
        ),
        migrations.CreateModel(
            name='FactChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('subject_type', models.CharField(choices=[('tool', 'AI tool'), ('identity', 'Service identity'), ('credential', 'Credential'), ('grant', 'Grant')], max_length=16)),
                ('subject_id', models.BigIntegerField()),
                ('changes', models.JSONField(help_text='{field: [before, after]} for the governed fields that changed.')),
                ('changed_at', models.DateTimeField(auto_now_add=True)),
                ('reviewed_at', models.DateTimeField(blank=True, null=True)),
                ('changed_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('identity', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inventory.serviceidentity')),
                ('reviewed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tool', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inventory.aitool')),
            ],
            options={
                'ordering': ['-changed_at'],
                'indexes': [models.Index(condition=models.Q(('reviewed_at__isnull', True)), fields=['subject_type', 'subject_id'], name='fact_change_unreviewed')],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
