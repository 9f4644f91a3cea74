"""Posture that an auditor can trust (issue 16): framework groups (families, categories, themes), the coverage
counts of the daily snapshots, and the whole catalogs loaded."""

from django.db import migrations, models


def load(apps, schema_editor):
    from inventory.posture.catalog import load_frameworks

    load_frameworks(
        framework_model=apps.get_model("inventory", "Framework"),
        control_model=apps.get_model("inventory", "Control"),
    )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0018_gateway_event_context")]

    operations = [
        migrations.AddField(
            model_name="framework",
            name="groups",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="control",
            name="group",
            field=models.CharField(
                blank=True, help_text="Its family, category or theme (Framework.groups).", max_length=40
            ),
        ),
        migrations.AddField(
            model_name="posturesnapshot",
            name="unassessed",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="posturesnapshot",
            name="attested",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="controlsnapshot",
            name="tools_unassessed",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.CreateModel(
            name="FrameworkSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("controls", models.PositiveIntegerField()),
                ("assessable", models.PositiveIntegerField()),
                ("attested", models.PositiveIntegerField()),
                ("tools", models.PositiveIntegerField()),
                ("passing", models.PositiveIntegerField()),
                ("failing", models.PositiveIntegerField()),
                ("unassessed", models.PositiveIntegerField()),
                (
                    "framework",
                    models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="+", to="inventory.framework"),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("day", "framework"), name="uniq_framework_snapshot")],
            },
        ),
        migrations.RunPython(load, migrations.RunPython.noop),
    ]
