"""Each detector run keeps the number of its unresolved findings, for the findings page's counts."""

from django.db import migrations, models
from django.db.models import Count


def count_unresolved(apps, schema_editor):
    Finding = apps.get_model("inventory", "Finding")
    DetectorRun = apps.get_model("inventory", "DetectorRun")
    counts = Finding.objects.exclude(status="resolved").order_by().values("detector").annotate(n=Count("*"))
    for row in counts:
        DetectorRun.objects.filter(detector=row["detector"]).update(unresolved=row["n"])


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0012_access_event_composite_indexes_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="detectorrun",
            name="unresolved",
            field=models.PositiveIntegerField(default=0, help_text="Its unresolved findings after that run."),
        ),
        migrations.RunPython(count_unresolved, migrations.RunPython.noop),
    ]
