from django.db import migrations


def load(apps, schema_editor):
    from inventory.posture.catalog import load_frameworks

    load_frameworks(
        framework_model=apps.get_model("inventory", "Framework"),
        control_model=apps.get_model("inventory", "Control"),
    )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0007_frameworks_and_posture")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
