"""Migration 0030 moves the prompt case's findings from `secret_exposed` to `secret_in_prompt` with their state, so the
split neither reopens a handled exposure as new and uncontained nor loses a suppression (found by review)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("inventory", "0029_discovery_drop_duplicate_indexes")]
AFTER = [("inventory", "0030_detection_response_index")]


@pytest.mark.django_db(transaction=True)
def test_prompt_findings_move_to_secret_in_prompt_with_their_state(owner):
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        apps = executor.loader.project_state(BEFORE).apps
        AITool, Identity = apps.get_model("inventory", "AITool"), apps.get_model("inventory", "ServiceIdentity")
        Credential, Finding = apps.get_model("inventory", "Credential"), apps.get_model("inventory", "Finding")
        Match = apps.get_model("inventory", "ToolSecretMatch")
        now = timezone.now()

        def tool(slug, *fields):
            made = AITool.objects.create(name=slug, slug=slug, kind="assistant", environment="dev", owner_id=owner.pk)
            for field in fields:
                Match.objects.create(tool=made, field=field, line_number=1, secret_type="Secret Keyword",
                                     redacted="key: ****")  # fmt: skip
            return made

        identity = Identity.objects.create(name="svc-x", kind="service_account", provider="github", owner_id=owner.pk,
                                           environment="dev")  # fmt: skip
        in_prompt = Credential.objects.create(identity=identity, kind="api_key", fingerprint="a" * 64, last4="0001",
                                              storage="prompt", created_at=now)  # fmt: skip
        in_repo = Credential.objects.create(identity=identity, kind="api_key", fingerprint="b" * 64, last4="0002",
                                            storage="repository", created_at=now)  # fmt: skip
        subjects = {
            "prompt credential": ("credential", in_prompt.pk),
            "repository credential": ("credential", in_repo.pk),
            "prompt text": ("tool", tool("p", "prompt_templates").pk),
            "connector text": ("tool", tool("c", "connector_config").pk),
            "both texts": ("tool", tool("b", "prompt_templates", "connector_config").pk),
        }
        for subject_type, subject_id in subjects.values():
            Finding.objects.create(detector="secret_exposed", subject_type=subject_type, subject_id=subject_id,
                                   severity="critical", status="suppressed", suppress_reason="accepted",
                                   first_seen_at=now, recorded_last_seen_at=now, contained_at=now)  # fmt: skip
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        apps = executor.loader.project_state(AFTER).apps
        Finding = apps.get_model("inventory", "Finding")
        found = {
            name: Finding.objects.values_list("detector", "status", "contained_at").get(
                subject_type=subject[0], subject_id=subject[1]
            )
            for name, subject in subjects.items()
        }
        moved = {name for name, (detector, _, _) in found.items() if detector == "secret_in_prompt"}
        assert moved == {"prompt credential", "prompt text"}
        assert all(status == "suppressed" and contained == now for _, status, contained in found.values())
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
