from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q


def move_prompt_findings(apps, schema_editor):
    """`secret_exposed` no longer covers secrets in prompts: `secret_in_prompt` does (LLM07). Its findings move to the
    new detector with their state (status, suppression, containment, response times), so that the split neither
    reopens a handled exposure as new and uncontained nor loses a suppression. A tool with secrets in both its prompt
    and its connector text keeps its finding under `secret_exposed`; the next run opens the prompt one."""
    Finding = apps.get_model("inventory", "Finding")
    Credential = apps.get_model("inventory", "Credential")
    ToolSecretMatch = apps.get_model("inventory", "ToolSecretMatch")
    taken = Finding.objects.filter(
        detector="secret_in_prompt", subject_type=OuterRef("subject_type"), subject_id=OuterRef("subject_id")
    )
    old = Finding.objects.filter(detector="secret_exposed").exclude(Exists(taken))
    in_prompt = Credential.objects.filter(storage="prompt").values("pk")
    old.filter(subject_type="credential", subject_id__in=in_prompt).update(detector="secret_in_prompt")
    prompt = ToolSecretMatch.objects.filter(tool_id=OuterRef("subject_id"), field="prompt_templates")
    elsewhere = ToolSecretMatch.objects.filter(tool_id=OuterRef("subject_id")).exclude(field="prompt_templates")
    old.filter(Q(Exists(prompt)) & ~Q(Exists(elsewhere)), subject_type="tool").update(detector="secret_in_prompt")


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0029_discovery_drop_duplicate_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="finding",
            index=models.Index(
                condition=models.Q(("observed_at__isnull", False), ("contained_at__isnull", False), _connector="OR"),
                fields=["opened_at"],
                name="finding_response_idx",
            ),
        ),
        migrations.RunPython(move_prompt_findings, migrations.RunPython.noop, elidable=True),
    ]
