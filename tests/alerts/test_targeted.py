"""Event-driven detection (issue 18): a write queues a targeted run of the detectors that depend on what it changed,
narrowed to the changed subjects, recorded as a scan records (open, reopen, resolve); bursts coalesce into one run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import services, tasks
from inventory.changes import changes_after_source_run, changes_record, targeted_run_schedule
from inventory.detection import targeted
from inventory.detection.dependencies import affected
from inventory.detection.scan import scan_create, scan_run
from inventory.models import DetectionChange, DetectionSchedule, Finding, Scan
from tests.factories import BindingFactory, CredentialFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

LEAKED = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"


@pytest.fixture
def tool(owner):
    return ToolFactory(owner=owner, slug="drafts", prompt_templates="Be kind.")


def _patch_tool(api_as, tool, text, capture):
    with capture(execute=True):
        response = api_as("owner").patch(f"/api/v1/tools/{tool.pk}/", {"prompt_templates": text}, format="json")
    assert response.status_code == 200, response.content


def _finding(detector, subject_type, subject_id):
    return Finding.objects.filter(detector=detector, subject_type=subject_type, subject_id=subject_id).first()


def test_a_secret_pasted_into_a_prompt_opens_a_finding_without_a_scan(
    api_as, tool, celery_eager, django_capture_on_commit_callbacks
):
    before = timezone.now()
    _patch_tool(api_as, tool, f"You draft answers.\nUse key {LEAKED} for billing.", django_capture_on_commit_callbacks)
    finding = _finding("secret_in_prompt", "tool", tool.pk)
    assert finding is not None and finding.status == "open" and finding.tool_id == tool.pk
    assert before <= finding.observed_at <= finding.opened_at == finding.first_seen_at
    assert not Scan.objects.exists()
    assert not DetectionChange.objects.exists()  # drained
    # The secret removed: the same kind of run resolves it.
    _patch_tool(api_as, tool, "You draft answers.", django_capture_on_commit_callbacks)
    finding.refresh_from_db()
    assert finding.status == "resolved"
    # Back again: reopened, with a new opening time.
    _patch_tool(api_as, tool, f"Key: {LEAKED}", django_capture_on_commit_callbacks)
    reopened = Finding.objects.get(pk=finding.pk)
    assert reopened.status == "open" and reopened.opened_at > finding.opened_at


def test_a_credential_moved_into_a_prompt_opens_and_revoking_it_resolves(
    api_as, owner, celery_eager, django_capture_on_commit_callbacks
):
    identity = IdentityFactory(owner=owner)
    credential = CredentialFactory(identity=identity, storage="vault")
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_update(actor=owner, credential=credential, data={"storage": "prompt"})
    assert _finding("secret_in_prompt", "credential", credential.pk).status == "open"
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_update(actor=owner, credential=credential, data={"revoked_at": timezone.now()})
    assert _finding("secret_in_prompt", "credential", credential.pk).status == "resolved"


def test_a_targeted_run_leaves_other_subjects_findings_alone(owner, celery_eager, django_capture_on_commit_callbacks):
    """Only the changed subjects are compared: a finding elsewhere that a full scan would resolve stays as it is."""
    elsewhere = IdentityFactory(owner=owner, interactive_use_seen=True)
    scan_run(scan_create(detectors=["identity_human_use"]).pk)
    stale = _finding("identity_human_use", "identity", elsewhere.pk)
    assert stale.status == "open"
    type(elsewhere).objects.filter(pk=elsewhere.pk).update(interactive_use_seen=False)  # a write that queued nothing
    changed = IdentityFactory(owner=owner)
    with django_capture_on_commit_callbacks(execute=True):
        services.identity_update(actor=owner, identity=changed, data={"interactive_use_seen": False, "kind": "api_key"})
    assert Finding.objects.get(pk=stale.pk).status == "open"
    scan_run(scan_create(detectors=["identity_human_use"]).pk)
    assert Finding.objects.get(pk=stale.pk).status == "resolved"


def test_a_tool_change_reaches_the_identities_bound_to_it(owner):
    """identity_env_mixed reads the environments of the tools an identity is bound to: a tool's change re-checks
    the identity, through the binding."""
    identity = IdentityFactory(owner=owner)
    BindingFactory(tool=ToolFactory(owner=owner, environment="dev"), identity=identity)
    moved = ToolFactory(owner=owner, environment="dev")
    BindingFactory(tool=moved, identity=identity)
    # Towards more risk, so applied at once (a change towards less is held for review: inventory.facts).
    services.tool_update(actor=owner, tool=moved, data={"environment": "prod"})
    targeted.targeted_run()
    assert _finding("identity_env_mixed", "identity", identity.pk).status == "open"


def test_a_burst_of_1000_changed_credentials_is_one_targeted_run(
    owner, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(tasks.run_targeted_detection, "apply_async", lambda **kw: queued.append(kw))
    identity = IdentityFactory(owner=owner)
    credentials = CredentialFactory.create_batch(1000, identity=identity, storage="vault")
    for credential in credentials:  # 1,000 writes, each committing on its own, as 1,000 API calls would
        with django_capture_on_commit_callbacks(execute=True):
            services.credential_update(actor=owner, credential=credential, data={"storage": "prompt"})
    assert len(queued) == 1 and queued[0]["countdown"] >= 1
    assert DetectionChange.objects.filter(claim="").count() == 1000
    result = targeted.targeted_run()  # what the worker runs once the countdown passes
    assert result["changes"] >= 1000 and "error" not in str(result)
    assert Finding.objects.filter(detector="secret_in_prompt", subject_type="credential").count() == 1000
    assert not DetectionChange.objects.exists()
    assert targeted.targeted_run() == {"changes": 0}
    # The run cleared the mark: the next write queues the next run.
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_update(actor=owner, credential=credentials[0], data={"revoked_at": timezone.now()})
    assert len(queued) == 2


def test_a_lost_task_does_not_block_the_queue_for_ever(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.run_targeted_detection, "apply_async", lambda **kw: queued.append(kw))
    assert targeted_run_schedule() and not targeted_run_schedule()
    DetectionSchedule.objects.update(scheduled_at=timezone.now() - timedelta(minutes=10))
    assert targeted_run_schedule() and len(queued) == 2


def test_an_import_run_is_one_statement_and_one_run(owner, security, monkeypatch, django_capture_on_commit_callbacks):
    from inventory.models import SourceObject, SourceRun

    queued = []
    monkeypatch.setattr(tasks.run_targeted_detection, "apply_async", lambda **kw: queued.append(kw))
    now = timezone.now()
    run = SourceRun.objects.create(kind="aws-credential-report", actor=security, actor_label="sec", file_digest="0",
                                   started_at=now, finished_at=now)  # fmt: skip
    identities = IdentityFactory.create_batch(30, owner=owner)
    SourceObject.objects.bulk_create(
        SourceObject(provider="aws", object_type="identity", external_id=f"arn:{i.pk}", kind=run.kind, identity=i,
                     digest="x", first_seen_at=now, last_seen_at=now, first_run=run, last_run=run)
        for i in identities
    )  # fmt: skip
    changes_after_source_run(run.pk)
    assert len(queued) == 1
    assert set(DetectionChange.objects.filter(topic="source,identity,credential").values_list("key_id", flat=True)) == {
        i.pk for i in identities
    }


def test_detectors_are_picked_by_what_they_depend_on():
    keys = {d.key for d in affected({"tool.prompt_templates"})}
    assert (
        "secret_in_prompt" in keys
        and "secret_exposed" not in keys
        and "credential_stale" not in keys
        and "third_party_unreviewed" not in keys
    )
    assert {d.key for d in affected({"tool"})} >= {"secret_exposed", "identity_env_mixed", "tool_unmediated"}
    assert "credential_stale" in {d.key for d in affected({"usage"})}


def test_a_rolled_back_write_queues_nothing(owner, monkeypatch):
    from django.db import transaction

    queued = []
    monkeypatch.setattr(tasks.run_targeted_detection, "apply_async", lambda **kw: queued.append(kw))
    identity = IdentityFactory(owner=owner)
    with pytest.raises(RuntimeError), transaction.atomic():
        changes_record(topics=["identity"], identities=[identity.pk])
        raise RuntimeError
    assert not DetectionChange.objects.exists() and queued == []


def test_changes_a_dead_run_had_claimed_are_drained_again(owner):
    identity = IdentityFactory(owner=owner)
    credential = CredentialFactory(identity=identity, storage="prompt")
    DetectionChange.objects.create(key_type="identity", key_id=identity.pk, topic="credential", claim="dead-run",
                                   observed_at=timezone.now() - timedelta(hours=1))  # fmt: skip
    assert targeted.targeted_run()["changes"] >= 1
    assert _finding("secret_in_prompt", "credential", credential.pk).status == "open"
    assert not DetectionChange.objects.exists()


def test_the_grant_expiry_job_queues_its_identities_for_a_targeted_run(
    owner, monkeypatch, django_capture_on_commit_callbacks
):
    from approvals.services import grants_expire_due
    from tests.factories import GrantFactory

    queued = []
    monkeypatch.setattr(tasks.run_targeted_detection, "apply_async", lambda **kw: queued.append(kw))
    identity = IdentityFactory(owner=owner)
    GrantFactory(identity=identity, expires_at=timezone.now() - timedelta(minutes=1))
    GrantFactory(identity=identity, expires_at=timezone.now() + timedelta(days=3))  # not due
    with django_capture_on_commit_callbacks(execute=True):
        assert grants_expire_due() == 1
    changes = set(DetectionChange.objects.values_list("key_type", "key_id", "topic"))
    assert changes == {(DetectionChange.KeyType.IDENTITY, identity.pk, "grant")} and len(queued) == 1


def test_a_json_import_queues_what_it_names_for_one_targeted_run(
    security, owner, other_owner, monkeypatch, django_capture_on_commit_callbacks
):
    from inventory.imports.document import inventory_import

    queued = []
    monkeypatch.setattr(tasks.run_targeted_detection, "apply_async", lambda **kw: queued.append(kw))
    from tests.inventory.import_fixtures import full_document

    with django_capture_on_commit_callbacks(execute=True):
        inventory_import(actor=security, document=full_document())
    changed = set(DetectionChange.objects.values_list("key_type", "topic"))
    assert (DetectionChange.KeyType.TOOL, "tool") in changed
    assert {(DetectionChange.KeyType.IDENTITY, t) for t in ("identity", "credential", "grant")} <= changed
    assert len(queued) == 1


def test_confirming_a_held_change_detects_at_once(api_as, owner, celery_eager, django_capture_on_commit_callbacks):
    """A held risk-lowering change, once a second person confirms it, is a write like any other: the findings it
    clears resolve in a targeted run, not at the nightly scan."""
    identity = IdentityFactory(owner=owner)
    credential = CredentialFactory(identity=identity, storage="vault")
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_update(actor=owner, credential=credential, data={"storage": "prompt"})
    exposed = _finding("secret_in_prompt", "credential", credential.pk)
    assert exposed.status == "open"
    with django_capture_on_commit_callbacks(execute=True):  # moving it to the vault lowers risk: held for review
        answer = api_as("owner").patch(f"/api/v1/credentials/{credential.pk}/", {"storage": "vault"}, format="json")
    assert answer.status_code == 200 and answer.json()["storage"] == "prompt"
    held = Finding.objects.get(detector="fact_change_unreviewed", subject_id=credential.pk)
    assert held.status == "open" and _finding("secret_in_prompt", "credential", credential.pk).status == "open"
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_as("security").post(f"/api/v1/findings/{held.pk}/confirm-change/", {"comment": "checked"})
    assert answer.status_code == 200, answer.content
    assert _finding("secret_in_prompt", "credential", credential.pk).status == "resolved"
    assert not Scan.objects.exists() and not DetectionChange.objects.exists()
