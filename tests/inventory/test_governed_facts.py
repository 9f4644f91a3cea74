"""Issue 11: the facts a rule depends on are not self-attested by the people the rule governs. Each test walks
around a rule from outside, as the owner it governs would."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.detection.scan import scan_create, scan_run
from inventory.models import AITool, AuditEntry, Credential, FactChange, Finding
from tests.factories import CredentialFactory, IdentityFactory, ScopeFactory, ToolFactory

pytestmark = pytest.mark.django_db


def _scan_changes() -> set[tuple[str, int]]:
    scan_run(scan_create(detectors=["fact_change_unreviewed"]).pk)
    unresolved = Finding.objects.filter(detector="fact_change_unreviewed").unresolved()
    return set(unresolved.values_list("subject_type", "subject_id"))


def test_an_owner_cannot_date_a_credential(api_as, owner):
    """Reproduced: an owner created a credential with created_at in 2099, so age detectors never fired."""
    identity = IdentityFactory(owner=owner)
    body = {
        "identity": identity.name,
        "kind": "api_key",
        "secret": "ghp_" + "x" * 36,
        "created_at": "2099-01-01T00:00Z",
    }
    response = api_as("owner").post("/api/v1/credentials/", body, format="json")
    assert response.status_code == 400 and "created_at" in response.json()
    body["created_at"] = "2020-01-01T00:00:00Z"
    assert api_as("owner").post("/api/v1/credentials/", body, format="json").status_code == 400
    assert not Credential.objects.filter(identity=identity).exists()
    # Without a date the system sets it.
    del body["created_at"]
    response = api_as("owner").post("/api/v1/credentials/", body, format="json")
    assert response.status_code == 201
    assert abs(Credential.objects.get(identity=identity).created_at - timezone.now()) < timedelta(minutes=1)


def test_nobody_records_a_time_in_the_future(api_as, security):
    identity = IdentityFactory(owner=security)
    body = {
        "identity": identity.name,
        "kind": "api_key",
        "secret": "ghp_" + "y" * 36,
        "created_at": "2099-01-01T00:00Z",
    }
    assert api_as("security").post("/api/v1/credentials/", body, format="json").status_code == 400
    credential = CredentialFactory(identity=identity)
    patch = {"last_rotated_at": "2099-01-01T00:00:00Z"}
    assert api_as("security").patch(f"/api/v1/credentials/{credential.pk}/", patch, format="json").status_code == 400


def test_an_owner_cannot_unretire_a_tool(api_as, owner):
    """Reproduced: an owner un-retired a tool security retired (PATCH status: active), bringing its grants back."""
    tool = ToolFactory(owner=owner, status="retired")
    for status in ("active", "pilot"):
        response = api_as("owner").patch(f"/api/v1/tools/{tool.pk}/", {"status": status}, format="json")
        assert response.status_code == 400
    assert AITool.objects.get(pk=tool.pk).status == "retired"
    assert api_as("security").patch(f"/api/v1/tools/{tool.pk}/", {"status": "active"}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("make", "path", "body", "subject"),
    [
        (lambda o: CredentialFactory(identity=IdentityFactory(owner=o), storage="prompt"), "credentials",
         {"storage": "vault"}, "credential"),
        (lambda o: IdentityFactory(owner=o, third_party=True), "identities", {"third_party": False}, "identity"),
        (lambda o: IdentityFactory(owner=o, environment="prod"), "identities", {"environment": "dev"}, "identity"),
        (lambda o: ToolFactory(owner=o, environment="prod"), "tools", {"environment": "dev"}, "tool"),
        (lambda o: ToolFactory(owner=o, data_classification="restricted"), "tools",
         {"data_classification": "public"}, "tool"),
    ],
)  # fmt: skip
def test_an_owners_risk_lowering_change_waits_for_review(api_as, owner, make, path, body, subject):
    """Reproduced: an owner flipped storage to vault or third_party to false, clearing findings without review; or
    moved a tool out of production to need fewer approvers. The change is held, not applied."""
    obj = make(owner)
    field, value = next(iter(body.items()))
    original = getattr(obj, field)
    response = api_as("owner").patch(f"/api/v1/{path}/{obj.pk}/", body, format="json")
    assert response.status_code == 200, response.content
    obj.refresh_from_db()
    assert getattr(obj, field) == original and response.json()[field] == original
    change = FactChange.objects.get(subject_type=subject, subject_id=obj.pk)
    assert change.changes[field] == [original, value] and change.reviewed_at is None
    entry = AuditEntry.objects.get(object_id=str(obj.pk), action__endswith=".change_held")
    assert (entry.before, entry.after) == ({field: original}, {field: value})
    assert (subject, obj.pk) in _scan_changes()


def test_security_confirms_the_change_and_the_finding_resolves(api_as, owner):
    identity = IdentityFactory(owner=owner, third_party=True)
    api_as("owner").patch(f"/api/v1/identities/{identity.pk}/", {"third_party": False}, format="json")
    assert _scan_changes() == {("identity", identity.pk)}
    finding = Finding.objects.get(detector="fact_change_unreviewed")
    assert api_as("owner").post(f"/api/v1/findings/{finding.pk}/confirm-change/").status_code in (403, 404)
    response = api_as("security").post(f"/api/v1/findings/{finding.pk}/confirm-change/", {"comment": "checked"})
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    identity.refresh_from_db()
    assert identity.third_party is False and FactChange.objects.get().reviewed_at is not None
    confirmed = AuditEntry.objects.get(action="serviceidentity.change_confirmed")
    assert (confirmed.before, confirmed.after) == ({"third_party": True}, {"third_party": False})
    assert AuditEntry.objects.filter(action="finding.change_confirmed").exists()
    assert _scan_changes() == set()


def test_raising_risk_applies_at_once(api_as, owner):
    tool = ToolFactory(owner=owner, environment="dev")
    api_as("owner").patch(f"/api/v1/tools/{tool.pk}/", {"environment": "prod"}, format="json")
    tool.refresh_from_db()
    assert tool.environment == "prod" and not FactChange.objects.exists()


def test_no_single_security_user_lowers_a_fact(api_as, security):
    """A security user's own lowering change is held too, and they cannot confirm it themselves."""
    from tests.factories import UserFactory

    tool = ToolFactory(owner=security, environment="prod", data_classification="restricted")
    api_as("security").patch(f"/api/v1/tools/{tool.pk}/", {"environment": "dev"}, format="json")
    tool.refresh_from_db()
    assert tool.environment == "prod"
    _scan_changes()
    finding = Finding.objects.get(detector="fact_change_unreviewed")
    response = api_as("security").post(f"/api/v1/findings/{finding.pk}/confirm-change/")
    assert response.status_code == 400 and "another security user" in response.content.decode()
    colleague = APIClient()
    colleague.force_authenticate(UserFactory(username="sec2", roles=["security"]))
    assert colleague.post(f"/api/v1/findings/{finding.pk}/confirm-change/").status_code == 200
    tool.refresh_from_db()
    assert tool.environment == "dev"


def test_a_held_change_keeps_the_policy_strict(api_as, owner, security):
    """Reproduced by review: the held value must be what the policy reads until it is confirmed."""
    from approvals import policy

    tool = ToolFactory(owner=owner, environment="prod", data_classification="restricted")
    api_as("owner").patch(f"/api/v1/tools/{tool.pk}/", {"environment": "dev", "data_classification": "internal"})
    tool.refresh_from_db()
    outcome = policy.evaluate(tool=tool, scopes=[ScopeFactory(risk="read")], duration_days=7)
    assert outcome.required_approvals == 2 and not outcome.auto_approve


@pytest.mark.parametrize("name", ["Bot\r\nBcc: evil@example.test", "Bot\x00", "Bot\u2028x", "Bot\x85x"])
def test_names_refuse_control_characters(api_as, name):
    """Reproduced: tool names accepted CR/LF (the review mail then failed silently)."""
    body = {"name": name, "slug": "bot", "kind": "assistant", "environment": "dev"}
    response = api_as("owner").post("/api/v1/tools/", body, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert name not in response.content.decode()
    assert not AITool.objects.exists()


def test_the_tool_form_refuses_control_characters(page_as):
    client = page_as("owner")
    body = {"name": "Bot\r\nX", "slug": "bot", "kind": "assistant", "environment": "dev"}
    body |= {"data_classification": "internal", "status": "active"}
    response = client.post("/tools/new/", body)
    assert response.status_code in (200, 400) and not AITool.objects.exists()


def test_security_confirms_the_change_on_the_finding_page(api_as, page_as, owner):
    credential = CredentialFactory(identity=IdentityFactory(owner=owner), storage="prompt")
    api_as("owner").patch(f"/api/v1/credentials/{credential.pk}/", {"storage": "vault"}, format="json")
    _scan_changes()
    finding = Finding.objects.get(detector="fact_change_unreviewed")
    body = {"ids": [finding.pk], "action": "confirm_change", "reason": "vault entry checked"}
    assert page_as("owner").post("/findings/bulk/", body).status_code == 403
    page = page_as("security").get(f"/findings/{finding.pk}/")
    assert b"Confirm the change" in page.content
    response = page_as("security").post("/findings/bulk/", body, follow=True)
    assert b"Confirmed the change on 1 finding." in response.content
    assert Finding.objects.get(pk=finding.pk).status == "resolved"


ROLES = ("anonymous", "owner", "other_owner", "security", "manager", "gateway")
CONFIRM = {"anonymous": 401, "owner": 403, "other_owner": 403, "security": 200, "manager": 403, "gateway": 403}


@pytest.mark.parametrize(("role", "status"), [pytest.param(r, CONFIRM[r], id=r) for r in ROLES])
def test_confirm_change_api_by_role(api_as, owner, role, status):
    tool = ToolFactory(owner=owner, environment="prod")
    api_as("owner").patch(f"/api/v1/tools/{tool.pk}/", {"environment": "dev"}, format="json")
    _scan_changes()
    finding = Finding.objects.get(detector="fact_change_unreviewed")
    assert api_as(role).post(f"/api/v1/findings/{finding.pk}/confirm-change/").status_code == status
    assert (Finding.objects.get(pk=finding.pk).status == "resolved") is (status == 200)


def test_confirm_change_refuses_other_findings(api_as, owner):
    IdentityFactory(owner=owner, interactive_use_seen=True)
    scan_run(scan_create(detectors=["identity_human_use"]).pk)
    finding = Finding.objects.get()
    assert api_as("security").post(f"/api/v1/findings/{finding.pk}/confirm-change/").status_code == 400
