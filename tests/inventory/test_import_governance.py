"""Import cannot grant, never un-revokes, holds risk-lowering changes, and audits every object it touches."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from approvals.models import GrantIssue
from inventory.detection.scan import scan_create, scan_run
from inventory.imports.document import ImportRejected, inventory_import
from inventory.models import (
    AITool,
    AuditEntry,
    Credential,
    Finding,
    ScopeGrant,
)
from tests.factories import (
    CredentialFactory,
    IdentityFactory,
    ScopeFactory,
    ToolFactory,
)
from tests.inventory.import_fixtures import (
    SECRET,
    approvals_snapshot,
    approved_grant,
    full_document,
    object_entries,
    post,
    unapproved_grant,
    write,
)

pytestmark = pytest.mark.django_db


def test_a_revoked_grant_is_not_un_revoked_and_an_active_row_becomes_a_new_observed_grant(security):
    revoked_at = datetime(2025, 3, 1, tzinfo=UTC)
    revoked = unapproved_grant(
        identity=IdentityFactory(name="svc-a"),
        scope=ScopeFactory(name="jira:issue:read"),
        status="revoked",
        revoked_at=revoked_at,
        revoke_reason="Leaked in a ticket",
    )
    stored = ScopeGrant.objects.values().get(pk=revoked.pk)
    row = {"identity": "svc-a", "scope": "jira:issue:read", "status": "active", "revoked_at": None}
    row |= {"revoke_reason": "", "expires_at": "2030-01-01T00:00:00Z"}

    result = inventory_import(actor=security, document={"grants": [row]})

    assert ScopeGrant.objects.values().get(pk=revoked.pk) == stored
    new = ScopeGrant.objects.exclude(pk=revoked.pk).get()
    assert (new.status, new.expires_at) == ("active", datetime(2030, 1, 1, tzinfo=UTC))
    assert result.counts["grants"] == {"created": 1, "updated": 0, "unchanged": 0}
    (warning,) = result.warnings
    assert warning | {"message": None} == {
        "row": 0,
        "section": "grants",
        "field": "status",
        "path": "grants[0].status",
        "message": None,
    }
    assert warning["message"].startswith("This grant was revoked; import does not un-revoke it.")
    assert "authorizes nothing until approved" in warning["message"]
    assert AuditEntry.objects.get(action="inventory.imported").after["warnings"] == result.warnings

    again = inventory_import(actor=security, document={"grants": [row]})

    assert again.counts["grants"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert again.warnings == []
    assert ScopeGrant.objects.values().get(pk=revoked.pk) == stored


def test_a_revoked_grant_keeps_its_revocation_and_takes_the_rest_of_the_row(security):
    revoked_at = datetime(2025, 3, 1, tzinfo=UTC)
    revoked = unapproved_grant(
        identity=IdentityFactory(name="svc-a"),
        scope=ScopeFactory(name="jira:issue:read"),
        status="revoked",
        revoked_at=revoked_at,
        revoke_reason="Leaked in a ticket",
    )
    row = {"identity": "svc-a", "scope": "jira:issue:read", "revoked_at": None, "revoke_reason": "all fine"}
    row |= {"status": "expired", "last_used_at": "2025-02-27T10:00:00Z"}

    result = inventory_import(actor=security, document={"grants": [row]})

    revoked.refresh_from_db()
    assert (revoked.status, revoked.revoked_at, revoked.revoke_reason) == ("revoked", revoked_at, "Leaked in a ticket")
    assert revoked.last_used_at == datetime(2025, 2, 27, 10, tzinfo=UTC)
    assert ScopeGrant.objects.count() == 1
    by_path = {w["path"]: w["message"] for w in result.warnings}
    assert by_path == {
        "grants[0].status": "This grant was revoked; import does not un-revoke it.",
        "grants[0].revoked_at": "This grant was revoked; import does not un-revoke it.",
        "grants[0].revoke_reason": "This grant was revoked; import does not change its revocation.",
    }
    (entry,) = object_entries(action="grant.imported")
    assert (entry.before, entry.after) == ({"last_used_at": None}, {"last_used_at": "2025-02-27T10:00:00Z"})


def test_a_revoked_credential_is_not_un_revoked(security):
    revoked_at = datetime(2025, 3, 1, tzinfo=UTC)
    credential = CredentialFactory(storage="vault", revoked_at=revoked_at)
    row = {"identity": credential.identity.name, "kind": credential.kind, "fingerprint": credential.fingerprint}
    row |= {"revoked_at": None, "storage": "env"}

    result = inventory_import(actor=security, document={"credentials": [row]})

    credential.refresh_from_db()
    assert (credential.revoked_at, credential.storage) == (revoked_at, "env")
    assert result.warnings == [
        {
            "row": 0,
            "section": "credentials",
            "field": "revoked_at",
            "path": "credentials[0].revoked_at",
            "message": "This credential was revoked; import does not un-revoke it.",
        }
    ]
    (entry,) = object_entries(action="credential.imported")
    assert (entry.before, entry.after) == ({"storage": "vault"}, {"storage": "env"})


def test_an_imported_risk_lowering_change_is_held_for_review(security, owner):
    """One security user's import is one person's word: lowering a fact the rules rely on waits for another."""
    from inventory.models import FactChange

    tool = ToolFactory(slug="held", owner=owner, environment="prod", data_classification="restricted")
    row = {"slug": "held", "name": tool.name, "kind": tool.kind, "owner": "owner", "environment": "dev"}
    result = inventory_import(actor=security, document={"tools": [row]})
    tool.refresh_from_db()
    assert tool.environment == "prod"
    assert [w["path"] for w in result.warnings] == ["tools[0].environment"]
    change = FactChange.objects.get()
    assert (change.subject_type, change.changes, change.changed_by) == (
        "tool",
        {"environment": ["prod", "dev"]},
        security,
    )


def test_revoking_by_import_is_allowed_and_audited(security):
    grant = approved_grant(identity=IdentityFactory(name="svc-a"), scope=ScopeFactory(name="jira:issue:read"))
    row = {"identity": "svc-a", "scope": "jira:issue:read", "status": "revoked", "revoke_reason": "Gone at source"}

    result = inventory_import(actor=security, document={"grants": [row]})

    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason, grant.revoked_at is not None) == ("revoked", "Gone at source", True)
    assert result.warnings == []
    (entry,) = object_entries(action="grant.imported")
    assert entry.object_id == str(grant.pk) and entry.actor == security
    assert entry.before == {"status": "active", "revoked_at": None, "revoke_reason": ""}
    assert entry.after["status"] == "revoked" and entry.after["revoke_reason"] == "Gone at source"
    assert entry.after["revoked_at"] is not None


def test_an_approved_grant_takes_only_last_use_from_an_import(security):
    expires_at = datetime(2026, 1, 1, tzinfo=UTC)
    grant = approved_grant(
        identity=IdentityFactory(name="svc-a"), scope=ScopeFactory(name="jira:issue:read"), expires_at=expires_at
    )
    ToolFactory(slug="other-tool")
    approvals_before = approvals_snapshot()
    row = {"identity": "svc-a", "scope": "jira:issue:read", "expires_at": "2099-01-01T00:00:00Z", "tool": "other-tool"}
    row |= {"last_used_at": "2025-05-05T00:00:00Z", "status": "active"}

    result = inventory_import(actor=security, document={"grants": [row]})

    grant.refresh_from_db()
    assert (grant.expires_at, grant.tool_id, grant.status) == (expires_at, None, "active")
    assert grant.last_used_at == datetime(2025, 5, 5, tzinfo=UTC)
    assert {w["path"] for w in result.warnings} == {"grants[0].expires_at", "grants[0].tool"}
    assert all("approved request" in w["message"] for w in result.warnings)
    assert approvals_snapshot() == approvals_before


def test_an_imported_admin_grant_is_reported_unapproved_and_approvals_stay_untouched(security, owner):
    approvals_before = approvals_snapshot()
    identity = {
        "name": "svc-ops",
        "kind": "service_account",
        "provider": "aws",
        "owner": "owner",
        "environment": "prod",
    }
    document = {
        "scopes": [{"provider": "aws", "name": "aws:iam:admin", "risk": "admin"}],
        "identities": [identity],
        "grants": [{"identity": "svc-ops", "scope": "aws:iam:admin", "status": "active"}],
    }

    inventory_import(actor=security, document=document)

    grant = ScopeGrant.objects.get(scope__name="aws:iam:admin")
    assert grant.status == "active"
    assert approvals_snapshot() == approvals_before
    assert not GrantIssue.objects.filter(grant=grant).exists()
    scan = scan_run(scan_create(detectors=["grant_unapproved"]).pk)
    assert "error" not in scan.counts["grant_unapproved"], scan.counts
    found = set(Finding.objects.filter(detector="grant_unapproved").unresolved().values_list("subject_id", flat=True))
    assert grant.pk in found


def test_each_created_object_gets_an_audit_entry_with_its_values(security, owner, other_owner):
    result = inventory_import(actor=security, document=full_document())

    entries = object_entries()
    assert {e.action for e in entries} == {
        "team.imported",
        "scope.imported",
        "tool.imported",
        "identity.imported",
        "binding.imported",
        "credential.imported",
        "grant.imported",
    }
    created = sum(c["created"] for c in result.counts.values())
    assert len(entries) == created
    assert all(e.before is None and e.actor == security for e in entries)
    summary = AuditEntry.objects.get(action="inventory.imported")
    assert all(e.comment == f"Bulk import {summary.object_id}" for e in entries)
    assert summary.after["objects_audited"] == created

    tool = AITool.objects.get(slug="review-bot")
    (tool_entry,) = [e for e in entries if e.action == "tool.imported"]
    assert (tool_entry.object_type, tool_entry.object_id, tool_entry.object_repr) == (
        "inventory.aitool",
        str(tool.pk),
        "Review bot",
    )
    assert tool_entry.after["id"] == tool.pk
    assert tool_entry.after["owner"] == owner.pk and tool_entry.after["vendor"] == "Acme AI"
    credential = Credential.objects.get(identity__name="svc-review")
    (credential_entry,) = [
        e for e in entries if e.object_id == str(credential.pk) and e.action == "credential.imported"
    ]
    assert credential_entry.after["fingerprint"] == credential.fingerprint
    assert credential_entry.after["last4"] == SECRET[-4:]
    assert "secret" not in credential_entry.after
    (grant_entry,) = [e for e in entries if e.action == "grant.imported"]
    assert grant_entry.object_repr == "github:contents:read for svc-review"
    binding_reprs = {e.object_repr for e in entries if e.action == "binding.imported"}
    assert binding_reprs == {"review-bot -> svc-review", "review-bot -> svc-deploy"}


def test_an_update_is_audited_with_the_changed_fields_only(security, owner):
    tool = ToolFactory(slug="review-bot", name="Old name", owner=owner, kind="agent", environment="dev")
    row = {"slug": "review-bot", "name": "New name", "kind": "agent", "owner": "owner", "environment": "prod"}

    inventory_import(actor=security, document={"tools": [row]})

    (entry,) = object_entries()
    assert (entry.action, entry.object_id) == ("tool.imported", str(tool.pk))
    assert entry.before == {"name": "Old name", "environment": "dev"}
    assert entry.after == {"name": "New name", "environment": "prod"}
    assert entry.object_repr == "New name"


def test_an_unchanged_reimport_writes_no_object_entries(security, owner, other_owner):
    inventory_import(actor=security, document=full_document())
    first = len(object_entries())

    result = inventory_import(actor=security, document=full_document())

    assert len(object_entries()) == first
    assert result.warnings == []
    assert AuditEntry.objects.filter(action="inventory.imported").count() == 2


def test_control_characters_in_one_line_fields_are_row_errors(security, owner):
    tool = {"slug": "t", "kind": "agent", "owner": "owner", "environment": "dev"}
    document = {
        "tools": [
            {**tool, "name": "Evil\r\nSet-Cookie: x"},
            {**tool, "slug": "u", "name": "Fine", "vendor": "Acme\u2028AI"},
            {**tool, "slug": "v", "name": "Fine", "description": "Line one\n\tline two\r\n"},
            {**tool, "slug": "w", "name": "Fine", "description": "bell\x07"},
        ]
    }

    with pytest.raises(ImportRejected) as caught:
        inventory_import(actor=security, document=document)

    errors = {e["path"]: e["message"] for e in caught.value.errors}
    assert errors == {
        "tools[0].name": "Must not contain control characters.",
        "tools[1].vendor": "Must not contain control characters.",
        "tools[3].description": "Must not contain control characters.",
    }
    assert "Set-Cookie" not in json.dumps(caught.value.errors)


def test_api_shows_warnings(api_as, users):
    credential = CredentialFactory(revoked_at=datetime(2025, 3, 1, tzinfo=UTC))
    row = {"identity": credential.identity.name, "kind": credential.kind, "fingerprint": credential.fingerprint}

    response = post(api_as("security"), {"credentials": [{**row, "revoked_at": None}]})

    assert response.status_code == 200, response.json()
    assert [w["path"] for w in response.json()["warnings"]] == ["credentials[0].revoked_at"]
    assert post(api_as("security"), {"credentials": [row]}).json()["warnings"] == []


def test_command_prints_warnings(tmp_path, security):
    credential = CredentialFactory(revoked_at=datetime(2025, 3, 1, tzinfo=UTC))
    row = {"identity": credential.identity.name, "kind": credential.kind, "fingerprint": credential.fingerprint}
    out = io.StringIO()

    call_command(
        "import_inventory",
        write(tmp_path, {"credentials": [{**row, "revoked_at": None}]}),
        "--actor",
        "sec",
        stdout=out,
    )

    assert (
        "warning: credentials[0].revoked_at: This credential was revoked; import does not un-revoke it."
        in out.getvalue()
    )
    assert "with 1 warning(s)" in out.getvalue()
    credential.refresh_from_db()
    assert credential.revoked_at == datetime(2025, 3, 1, tzinfo=UTC)


# Errors: reported with paths, all in one pass, nothing written
