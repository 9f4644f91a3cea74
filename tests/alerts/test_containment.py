"""Containment in one step (issue 18), from outside: POST /findings/{id}/contain/ makes the very next authorize through
the identity `credential_compromised` (session and gateway token alike), until a new credential is registered and the
compromised one revoked; who may contain; bad input changes nothing; only security releases early."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.models import AuditEntry, Credential, Finding, ServiceIdentity
from tests.approvals.authorize_helpers import ask, gateway_token
from tests.factories import CredentialFactory, GrantFactory, IdentityFactory, ToolFactory

pytestmark = pytest.mark.django_db

NEW_SECRET = "sk-proj-ReplacementKey0123456789abcdefghijklmn"


def _finding(world, **fields) -> Finding:
    now = timezone.now()
    values = {
        "detector": "secret_exposed", "subject_type": "credential", "subject_id": world["credential"].pk,
        "tool": world["tool"], "identity": world["identity"], "severity": "critical", "first_seen_at": now,
        "recorded_last_seen_at": now, "opened_at": now, "observed_at": now,
    } | fields  # fmt: skip
    return Finding.objects.create(**values)


def _contain(client, finding, body=None):
    return client.post(f"/api/v1/findings/{finding.pk}/contain/", body or {"reason": "Key pasted in a chat."}, "json")


def _compromised(world) -> bool:
    return ServiceIdentity.objects.get(pk=world["identity"].pk).compromised_at is not None


def test_containing_denies_the_next_authorize_with_credential_compromised(api_as, world):
    assert ask(api_as("gateway"))["reason"] == "allowed"
    finding = _finding(world)
    response = _contain(api_as("owner"), finding)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["contained"] is True
    assert any("marked compromised" in action for action in body["actions"])
    assert any("credential_compromised" in action for action in body["actions"])
    answer = ask(api_as("gateway"))
    assert (answer["decision"], answer["reason"], answer["grant"]) == ("deny", "credential_compromised", None)
    # Naming the credential, or naming another live one of the identity, changes nothing.
    assert ask(api_as("gateway"), credential=str(world["credential"].pk))["reason"] == "credential_compromised"
    assert Credential.objects.get(pk=world["credential"].pk).compromised_at is not None
    finding.refresh_from_db()
    assert finding.contained_at is not None and finding.contained_by.username == "owner"
    entry = AuditEntry.objects.get(action="finding.contained")
    assert entry.comment == "Key pasted in a chat." and entry.actor.username == "owner"
    assert AuditEntry.objects.filter(action="credential.compromised", object_id=str(world["credential"].pk)).exists()


def test_a_gateway_token_is_denied_too(world, api_as, gateway):
    token = gateway_token("gw", "release-agent")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert ask(client)["reason"] == "allowed"
    assert _contain(api_as("security"), _finding(world)).status_code == 200
    answer = ask(client)
    assert (answer["decision"], answer["reason"]) == ("deny", "credential_compromised")


def test_a_new_credential_alone_does_not_lift_it_revoking_the_compromised_one_then_does(api_as, world):
    _contain(api_as("owner"), _finding(world))
    owner = api_as("owner")
    created = owner.post("/api/v1/credentials/", {"identity": "svc-release", "kind": "api_key", "secret": NEW_SECRET},
                         format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    assert ask(api_as("gateway"))["reason"] == "credential_compromised"
    revoked = owner.patch(f"/api/v1/credentials/{world['credential'].pk}/", {"revoked_at": timezone.now().isoformat()},
                          format="json")  # fmt: skip
    assert revoked.status_code == 200, revoked.content
    assert not _compromised(world)
    assert ask(api_as("gateway"))["reason"] == "allowed"
    assert AuditEntry.objects.filter(action="identity.containment_lifted", object_id=str(world["identity"].pk)).exists()


def test_revoking_first_then_registering_lifts_it_too(api_as, world):
    _contain(api_as("security"), _finding(world))
    owner = api_as("owner")
    owner.patch(f"/api/v1/credentials/{world['credential'].pk}/", {"revoked_at": timezone.now().isoformat()}, "json")
    assert _compromised(world)
    assert ask(api_as("gateway"))["reason"] == "credential_compromised"
    owner.post("/api/v1/credentials/", {"identity": "svc-release", "kind": "api_key", "secret": NEW_SECRET}, "json")
    assert ask(api_as("gateway"))["reason"] == "allowed"


def test_an_older_credential_is_no_replacement(api_as, world):
    """A second credential that existed before containment is not "a new credential registered"."""
    CredentialFactory(identity=world["identity"], created_at=timezone.now() - timedelta(days=3))
    _contain(api_as("security"), _finding(world))
    api_as("owner").patch(f"/api/v1/credentials/{world['credential'].pk}/",
                          {"revoked_at": timezone.now().isoformat()}, "json")  # fmt: skip
    assert ask(api_as("gateway"))["reason"] == "credential_compromised"


def test_other_identities_are_untouched(api_as, world):
    other_identity = IdentityFactory(owner=world["tool"].owner, name="svc-other")
    CredentialFactory(identity=other_identity)
    world["tool"].bindings.create(identity=other_identity)
    GrantFactory(identity=other_identity, scope=world["scope"], tool=world["tool"], resource_constraint="project:*",
                 expires_at=timezone.now() + timedelta(days=3))  # fmt: skip
    _contain(api_as("security"), _finding(world))
    assert ask(api_as("gateway"), identity="svc-other")["reason"] == "allowed"


@pytest.mark.parametrize(
    ("role", "statuses"),
    [("anonymous", {401, 403}), ("other_owner", {404}), ("manager", {403}), ("gateway", {403, 404})],
)
def test_who_may_not_contain(api_as, world, role, statuses):
    finding = _finding(world)
    assert _contain(api_as(role), finding).status_code in statuses
    assert not _compromised(world)
    assert Finding.objects.get(pk=finding.pk).contained_at is None
    assert not AuditEntry.objects.filter(action="finding.contained").exists()


def test_an_owner_of_another_tool_cannot_contain_even_a_finding_they_can_see(api_as, world, other_owner):
    """other_owner owns the identity's second tool only: the credential finding shows under release-agent."""
    their_tool = ToolFactory(owner=other_owner, slug="theirs")
    their_tool.bindings.create(identity=world["identity"])
    finding = _finding(world)
    response = _contain(api_as("other_owner"), finding)
    assert response.status_code in (403, 404)
    assert not _compromised(world)


def test_owners_cannot_contain_identity_findings_security_can(api_as, world):
    finding = _finding(world, detector="identity_human_use", subject_type="identity", subject_id=world["identity"].pk,
                       severity="high")  # fmt: skip
    assert _contain(api_as("owner"), finding).status_code == 403
    assert not _compromised(world)
    assert _contain(api_as("security"), finding).status_code == 200
    assert ask(api_as("gateway"))["reason"] == "credential_compromised"


@pytest.mark.parametrize(
    "body",
    [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": "x" * 4001}, {"reason": ["a"]}, ["reason"]],
)
def test_bad_input_is_400_and_changes_nothing(api_as, world, body):
    finding = _finding(world)
    response = api_as("security").post(f"/api/v1/findings/{finding.pk}/contain/", body, format="json")
    assert response.status_code == 400, response.content
    assert "reason" in response.json() or "non_field_errors" in response.json()
    assert not _compromised(world)
    assert Finding.objects.get(pk=finding.pk).contained_at is None
    assert ask(api_as("gateway"))["reason"] == "allowed"


def test_a_finding_with_nothing_to_contain_is_400(api_as, world):
    finding = _finding(world, detector="grant_unused", subject_type="grant", subject_id=world["grant"].pk)
    response = _contain(api_as("security"), finding)
    assert response.status_code == 400 and "finding" in response.json()
    assert not _compromised(world)


def test_resolved_or_already_contained_is_409(api_as, world):
    resolved = _finding(world, status="resolved", resolved_at=timezone.now())
    assert _contain(api_as("security"), resolved).status_code == 409
    assert not _compromised(world)
    finding = _finding(world, detector="source_key_exposed")
    assert _contain(api_as("security"), finding).status_code == 200
    assert _contain(api_as("security"), finding).status_code == 409
    assert AuditEntry.objects.filter(action="finding.contained").count() == 1


def test_unknown_finding_is_404(api_as, world):
    assert api_as("security").post("/api/v1/findings/999999/contain/", {"reason": "x"}, "json").status_code == 404


def test_only_security_releases_with_a_reason(api_as, world):
    finding = _finding(world)
    _contain(api_as("owner"), finding)
    release = f"/api/v1/findings/{finding.pk}/release/"
    assert api_as("owner").post(release, {"reason": "False alarm."}, "json").status_code == 403
    assert api_as("security").post(release, {"reason": " "}, "json").status_code == 400
    assert _compromised(world)
    response = api_as("security").post(release, {"reason": "The pasted value was a test key."}, "json")
    assert response.status_code == 200 and response.json()["contained"] is False
    assert ask(api_as("gateway"))["reason"] == "allowed"
    entry = AuditEntry.objects.get(action="finding.containment_released")
    assert entry.comment == "The pasted value was a test key." and entry.actor.username == "sec"
    assert api_as("security").post(release, {"reason": "again"}, "json").status_code == 409


def test_a_secret_in_the_tool_text_contains_every_identity_the_tool_acts_through(api_as, world):
    finding = _finding(world, subject_type="tool", subject_id=world["tool"].pk, identity=None)
    response = _contain(api_as("owner"), finding)
    assert response.status_code == 200, response.content
    assert ask(api_as("gateway"))["reason"] == "credential_compromised"


def test_an_exposure_left_uncontained_is_incident_response_evidence(api_as, world, celery_eager,
                                                                    django_capture_on_commit_callbacks):  # fmt: skip
    """exposure_uncontained fails RS.MA-01 / RS.MI-01 / IR-4 / A.5.26 an hour after an exposure opened; containing
    it clears that at once (the containment queues a targeted run)."""
    from inventory.detection import registry
    from inventory.detection.scan import scan_create, scan_run

    detector = registry.get("exposure_uncontained")
    assert set(detector.controls) == {"NIST-CSF-2.0:RS.MA-01", "NIST-CSF-2.0:RS.MI-01", "NIST-SP-800-53r5:IR-4",
                                      "ISO-IEC-27001-2022-AnnexA:A.5.26"}  # fmt: skip
    recent = _finding(world)
    scan_run(scan_create(detectors=["exposure_uncontained"]).pk)
    assert not Finding.objects.filter(detector="exposure_uncontained").exists()
    Finding.objects.filter(pk=recent.pk).update(opened_at=timezone.now() - timedelta(minutes=61))
    scan_run(scan_create(detectors=["exposure_uncontained"]).pk)
    evidence = Finding.objects.get(detector="exposure_uncontained")
    assert (evidence.subject_type, evidence.subject_id) == ("credential", world["credential"].pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert _contain(api_as("security"), recent).status_code == 200
    assert Finding.objects.get(pk=evidence.pk).status == "resolved"
