"""Bulk import through the service, the API and the command: upsert, idempotence, errors, secrets, scale."""

import io
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.middleware.csrf import _get_new_csrf_string
from django.urls import reverse
from rest_framework.test import APIClient

from approvals.models import AccessRequest, GrantIssue
from inventory.detection.scan import scan_create, scan_run
from inventory.fingerprints import digest_secret
from inventory.imports.document import MAX_ERRORS, ImportRejected, inventory_import
from inventory.models import (
    AITool,
    AuditEntry,
    Credential,
    Finding,
    Scope,
    ScopeGrant,
    ServiceIdentity,
    Team,
    ToolIdentity,
)
from tests import services
from tests.factories import (
    BindingFactory,
    CredentialFactory,
    GrantFactory,
    IdentityFactory,
    ScopeFactory,
    TeamFactory,
    ToolFactory,
    UserFactory,
)
from tests.secret_search import rows_containing

pytestmark = pytest.mark.django_db

URL = "/api/v1/import/"
SECRET = "sk-live-Imp0rtTestSecret-7f3a9c"
OTHER_FINGERPRINT = digest_secret("another-secret-held-elsewhere").fingerprint
INVENTORY_MODELS = (Team, Scope, AITool, ServiceIdentity, ToolIdentity, Credential, ScopeGrant)


def full_document() -> dict[str, Any]:
    return {
        "scopes": [{"provider": "github", "name": "github:contents:read", "risk": "read", "sensitive": False}],
        "tools": [
            {
                "slug": "review-bot",
                "name": "Review bot",
                "kind": "coding_assistant",
                "vendor": "Acme AI",
                "owner": "owner",
                "team": "platform",
                "environment": "prod",
                "data_classification": "confidential",
                "enforces_authorization": True,
                "identities": ["svc-review"],
            }
        ],
        "identities": [
            {
                "name": "svc-review",
                "kind": "service_account",
                "provider": "github",
                "owner": "owner",
                "environment": "prod",
                "last_used_at": "2025-01-31T12:00:00Z",
            },
            {
                "name": "svc-deploy",
                "kind": "api_key",
                "provider": "deploy",
                "owner": "owner2",
                "environment": "staging",
                "third_party": True,
                "tools": ["review-bot"],
            },
        ],
        "credentials": [
            {
                "identity": "svc-review",
                "kind": "api_key",
                "secret": SECRET,
                "storage": "vault",
                "created_at": "2025-01-01T00:00:00Z",
            },
            {"identity": "svc-deploy", "kind": "client_secret", "fingerprint": OTHER_FINGERPRINT, "last4": "here"},
        ],
        "grants": [
            {
                "identity": "svc-review",
                "scope": "github:contents:read",
                "tool": "review-bot",
                "resource_constraint": "repo:acme/*",
                "granted_at": "2025-01-02T00:00:00Z",
            }
        ],
    }


def unapproved_grant(**kwargs) -> ScopeGrant:
    """A grant no approval issued, as an earlier import leaves it (the factory's grants count as approved)."""
    if any(f.name == "approvals" for f in ScopeGrant._meta.fields):
        kwargs.setdefault("approvals", 0)
    return GrantFactory(**kwargs)


def approved_grant(**kwargs) -> ScopeGrant:
    """A grant issued by an approved request: it has its GrantIssue, the approval record import may never touch."""
    grant = unapproved_grant(**kwargs)
    request = AccessRequest.objects.create(
        requester=UserFactory(),
        tool=grant.tool or ToolFactory(),
        identity=grant.identity,
        justification="Reads the issues it triages.",
        duration_days=30,
        required_approvals=1,
        status="approved",
    )
    GrantIssue.objects.create(request=request, grant=grant, approved_until=grant.expires_at)
    return grant


def approvals_snapshot() -> dict[str, list[dict]]:
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in apps.get_app_config("approvals").get_models()}


def object_entries(**filters) -> list[AuditEntry]:
    """The per-object entries imports wrote (not the summaries), oldest first."""
    entries = AuditEntry.objects.filter(action__endswith=".imported", **filters).exclude(action="inventory.imported")
    return list(entries.order_by("id"))


def table_counts() -> dict[str, int]:
    return {m._meta.label: m._default_manager.count() for m in apps.get_models() if not m._meta.proxy}


def inventory_snapshot() -> dict[str, list[dict]]:
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in INVENTORY_MODELS}


def post(client, body: Any, *, raw: bool = False):
    data = body if raw else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json")


def paths(errors: list[dict]) -> set[str]:
    return {e["path"] for e in errors}


# Happy path


def test_import_creates_every_section(api_as, users):
    response = post(api_as("security"), full_document())

    assert response.status_code == 200, response.json()
    counts = response.json()["counts"]
    assert counts["teams"] == {"created": 1, "updated": 0, "unchanged": 0}
    assert counts["scopes"]["created"] == counts["tools"]["created"] == counts["grants"]["created"] == 1
    assert counts["identities"]["created"] == counts["credentials"]["created"] == counts["bindings"]["created"] == 2

    tool = AITool.objects.select_related("team", "owner").get(slug="review-bot")
    assert (tool.owner, tool.team.slug, tool.kind, tool.enforces_authorization) == (
        users["owner"],
        "platform",
        "coding_assistant",
        True,
    )
    assert set(tool.identities.values_list("name", flat=True)) == {"svc-review", "svc-deploy"}
    review = ServiceIdentity.objects.get(name="svc-review")
    assert review.last_used_at == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert ServiceIdentity.objects.get(name="svc-deploy").owner == users["other_owner"]
    credential = Credential.objects.get(identity=review)
    assert (credential.fingerprint, credential.last4) == (digest_secret(SECRET).fingerprint, SECRET[-4:])
    assert credential.created_at == datetime(2025, 1, 1, tzinfo=UTC)
    grant = ScopeGrant.objects.get()
    assert (grant.identity, grant.scope.name, grant.tool, grant.status) == (
        review,
        "github:contents:read",
        tool,
        "active",
    )

    entry = AuditEntry.objects.get(object_type="inventory.import")
    assert entry.actor == users["security"]
    assert entry.after["counts"] == counts
    assert response.json()["audit_entry"] == entry.pk


def test_reimport_changes_nothing(security, owner, other_owner):
    first = inventory_import(actor=security, document=full_document())
    before_counts, before_values = table_counts(), inventory_snapshot()

    second = inventory_import(actor=security, document=full_document())

    assert all(c["created"] == c["updated"] == 0 for c in second.counts.values()), second.counts
    assert {kind: c["unchanged"] for kind, c in second.counts.items()} == {
        kind: c["created"] for kind, c in first.counts.items()
    }
    assert inventory_snapshot() == before_values
    # The only new row is the second import's audit entry.
    after_counts = table_counts()
    assert after_counts.pop("inventory.AuditEntry") == before_counts.pop("inventory.AuditEntry") + 1
    assert after_counts == before_counts


def test_existing_rows_are_updated_by_natural_key_and_omitted_fields_kept(security, owner):
    identity = IdentityFactory(name="svc-review", owner=owner, environment="dev", external_id="keep-me")
    identity.last_used_at = datetime(2024, 6, 1, tzinfo=UTC)
    identity.save()
    tool = ToolFactory(slug="review-bot", name="Old name", owner=owner)
    BindingFactory(tool=tool, identity=identity)
    stamp = ServiceIdentity.objects.get(pk=identity.pk).updated_at
    tool_row = {"slug": "review-bot", "name": "New name", "kind": "agent", "owner": "owner", "environment": "prod"}
    identity_row = {
        "name": "svc-review",
        "kind": "api_key",
        "provider": "github",
        "owner": "owner",
        "environment": "prod",
    }
    document = {"tools": [{**tool_row, "identities": ["svc-review"]}], "identities": [identity_row]}

    result = inventory_import(actor=security, document=document)

    assert result.counts["tools"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert result.counts["identities"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert result.counts["bindings"] == {"created": 0, "updated": 0, "unchanged": 1}
    tool.refresh_from_db()
    identity.refresh_from_db()
    assert (tool.name, tool.kind, tool.team_id is not None) == ("New name", "agent", True)
    assert (identity.kind, identity.environment, identity.external_id) == ("api_key", "prod", "keep-me")
    assert identity.last_used_at == datetime(2024, 6, 1, tzinfo=UTC)
    assert identity.updated_at > stamp


def test_grant_upsert_prefers_the_active_grant_over_revoked_ones(security):
    identity = IdentityFactory(name="svc-a")
    scope = ScopeFactory(name="jira:issue:read")
    revoked = unapproved_grant(identity=identity, scope=scope, status="revoked")
    active = unapproved_grant(identity=identity, scope=scope)
    document = {"grants": [{"identity": "svc-a", "scope": "jira:issue:read", "expires_at": "2030-01-01T00:00:00Z"}]}

    result = inventory_import(actor=security, document=document)

    assert result.counts["grants"] == {"created": 0, "updated": 1, "unchanged": 0}
    active.refresh_from_db()
    revoked.refresh_from_db()
    assert active.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert revoked.expires_at is None


def test_existing_credential_matched_by_fingerprint(security):
    credential = CredentialFactory(storage="vault")
    document = {
        "credentials": [
            {
                "identity": credential.identity.name,
                "kind": credential.kind,
                "fingerprint": credential.fingerprint,
                "storage": "env",
            }
        ]
    }

    result = inventory_import(actor=security, document=document)

    assert result.counts["credentials"] == {"created": 0, "updated": 1, "unchanged": 0}
    credential.refresh_from_db()
    assert credential.storage == "env"


def test_empty_document_is_a_no_op_but_audited(security):
    result = inventory_import(actor=security, document={})

    assert all(c == {"created": 0, "updated": 0, "unchanged": 0} for c in result.counts.values())
    assert AuditEntry.objects.filter(object_type="inventory.import").count() == 1


# Governance: import never un-revokes, never grants, and audits each object it touches


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


def test_row_errors_have_paths_and_nothing_changes(api_as, users):
    ToolFactory(slug="existing-tool", owner=users["owner"])
    TeamFactory(slug="sre-team", name="sre")
    UserFactory(username="departed", is_active=False)
    document = full_document()
    document["identities"][1]["environment"] = "production"
    document["identities"].append(dict(document["identities"][0]))
    document["identities"].append({"name": "svc-x", "kind": "robot", "owner": "departed", "colour": "red"})
    document["tools"][0]["owner"] = "nobody"
    document["tools"][0]["identities"] = ["svc-review", "svc-missing", 7]
    document["tools"].append({**document["tools"][0], "slug": "Not a slug!", "team": "sre", "owner": "owner"})
    document["credentials"].append({"identity": "svc-review", "kind": "api_key"})
    document["credentials"].append({"identity": "svc-review", "kind": "api_key", "fingerprint": "sha1:abc"})
    document["grants"][0]["scope"] = "github:unknown"
    document["grants"].append({"identity": "svc-review", "scope": "github:contents:read", "granted_at": None})
    before = table_counts()

    response = post(api_as("security"), document)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert paths(errors) == {
        "identities[1].environment",
        "identities[2].name",
        "identities[3].colour",
        "identities[3].kind",
        "identities[3].provider",
        "identities[3].environment",
        "identities[3].owner",
        "tools[0].owner",
        "tools[0].identities[1]",
        "tools[0].identities[2]",
        "tools[1].slug",
        "tools[1].identities[1]",
        "tools[1].identities[2]",
        "tools[1].team",
        "credentials[2].secret",
        "credentials[3].fingerprint",
        "grants[0].scope",
        "grants[1].granted_at",
    }
    by_path = {e["path"]: e for e in errors}
    assert by_path["identities[1].environment"] == {
        "row": 1,
        "section": "identities",
        "field": "environment",
        "path": "identities[1].environment",
        "message": "Must be one of: dev, prod, staging.",
    }
    assert "Duplicate of identities[0]" in by_path["identities[2].name"]["message"]
    assert "No active user 'departed'" in by_path["identities[3].owner"]["message"]
    assert "svc-missing" in by_path["tools[0].identities[1]"]["message"]
    assert table_counts() == before


def test_an_unknown_section_and_a_wrong_section_type_are_errors(security):
    with pytest.raises(ImportRejected) as caught:
        inventory_import(actor=security, document={"tool": [], "identities": {"name": "x"}})

    assert paths(caught.value.errors) == {"tool", "identities"}


def test_errors_are_capped(security):
    rows = [{"name": f"svc-{n}"} for n in range(MAX_ERRORS)]

    with pytest.raises(ImportRejected) as caught:
        inventory_import(actor=security, document={"identities": rows})

    assert len(caught.value.errors) == MAX_ERRORS
    assert caught.value.truncated


def test_one_bad_row_rolls_back_the_valid_ones(security, owner, other_owner):
    document = full_document()
    document["grants"][0]["status"] = "pending"
    before = table_counts()

    with pytest.raises(ImportRejected) as caught:
        inventory_import(actor=security, document=document)

    assert paths(caught.value.errors) == {"grants[0].status"}
    assert table_counts() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"tools": [', "Malformed JSON"),
        (b"", "empty"),
        (b"\xff\xfe\x00", "Malformed JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "Malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"tools"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
    ids=["truncated", "empty", "binary", "deep", "list", "string", "null"],
)
def test_malformed_body_is_a_clean_400(api_as, body, message):
    before = table_counts()

    response = post(api_as("security"), body, raw=True)

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert message in error["message"]
    assert (error["row"], error["path"]) == (None, "")
    assert table_counts() == before


def test_body_over_the_size_limit_is_refused(api_as, settings):
    settings.IMPORT_MAX_BYTES = 100
    before = table_counts()

    response = post(api_as("security"), full_document())

    assert response.status_code == 400
    assert "larger than the 100 bytes" in response.json()["errors"][0]["message"]
    assert table_counts() == before


@pytest.mark.parametrize(("body", "expected"), [(None, 200), (b'{"tools": [', 400)], ids=["valid", "malformed"])
def test_session_auth_with_csrf_still_sees_the_raw_body(security, owner, other_owner, body, expected):
    # Session authentication reads the body while checking CSRF, before the view; errors must keep the import's shape.
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(security)
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    data = json.dumps(full_document()) if body is None else body

    response = client.post(URL, data=data, content_type="application/json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == expected
    if expected == 400:
        assert "Malformed JSON" in response.json()["errors"][0]["message"]


def test_a_form_upload_is_a_clean_400(api_as):
    response = api_as("security").post(URL, data={"tools": "x"}, format="multipart")

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("Malformed JSON")


def test_bad_text_never_reaches_the_database(security, owner):
    # NUL and lone surrogates make PostgreSQL (or the JSON encoder) fail later; they must be row errors now.
    identity = {"kind": "api_key", "provider": "x", "owner": "owner", "environment": "dev"}
    document = {"identities": [{**identity, "name": "nul\x00name"}, {**identity, "name": "bad\ud800name"}]}

    with pytest.raises(ImportRejected) as caught:
        inventory_import(actor=security, document=document)

    assert paths(caught.value.errors) == {"identities[0].name", "identities[1].name"}


def test_values_of_the_wrong_json_type_are_row_errors(security, owner):
    identity = {"name": ["svc"], "kind": ["api_key"], "provider": {"x": 1}, "owner": 7, "environment": None}
    identity |= {"third_party": "yes", "last_used_at": 20250101, "tools": "tool-a"}

    with pytest.raises(ImportRejected) as caught:
        inventory_import(actor=security, document={"identities": [identity, "not an object"]})

    fields = ("name", "kind", "provider", "owner", "environment", "third_party", "last_used_at", "tools")
    assert paths(caught.value.errors) == {f"identities[0].{f}" for f in fields} | {"identities[1]"}


def test_a_team_slug_whose_name_is_taken_is_an_error(security, owner):
    TeamFactory(slug="platform-eng", name="platform")
    tool = {"slug": "t", "name": "T", "kind": "agent", "owner": "owner", "environment": "dev", "team": "platform"}

    with pytest.raises(ImportRejected) as caught:
        inventory_import(actor=security, document={"tools": [tool]})

    assert paths(caught.value.errors) == {"tools[0].team"}


def test_only_security_may_call_the_service(owner, manager):
    for actor in (owner, manager):
        with pytest.raises(PermissionDenied):
            inventory_import(actor=actor, document={})


# Permissions


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("owner", 403),
        ("other_owner", 403),
        ("security", 200),
        ("manager", 403),
        ("gateway", 403),
    ],
)
def test_only_security_may_import(api_as, role, expected):
    response = post(api_as(role), full_document())

    assert response.status_code == expected
    assert AITool.objects.exists() is (expected == 200)


def test_url_is_registered():
    assert reverse("import") == URL


# Secrets


def test_secret_is_never_persisted_logged_or_echoed(api_as, caplog):
    caplog.set_level(logging.DEBUG)

    response = post(api_as("security"), full_document())

    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert rows_containing(SECRET) == []
    assert rows_containing(SECRET[:-4]) == []
    assert SECRET not in caplog.text
    # The probe itself works: it finds a value that is stored.
    assert "inventory.Credential.fingerprint" in rows_containing(digest_secret(SECRET).fingerprint)


def test_secret_is_not_echoed_in_errors(api_as):
    document = full_document()
    short = "x7Q!"
    document["credentials"] = [
        {"identity": "svc-review", "kind": "api_key", "secret": short},
        {"identity": "svc-review", "kind": "api_key", "secret": SECRET, "last4": "abcd"},
        {"identity": "svc-review", "kind": "api_key", "secret": SECRET},
        {"identity": "svc-review", "kind": "api_key", "secret": SECRET},
        {"identity": "svc-review", "kind": SECRET, "secret": SECRET + " "},
    ]

    response = post(api_as("security"), document)

    assert response.status_code == 400
    assert paths(response.json()["errors"]) == {
        "credentials[0].secret",
        "credentials[1].secret",
        "credentials[3].fingerprint",
        "credentials[4].kind",
        "credentials[4].secret",
    }
    body = response.content.decode()
    assert short not in body
    assert SECRET not in body


# The management command


def write(tmp_path, document: Any) -> str:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_command_imports_and_prints_counts(tmp_path, security, owner, other_owner):
    out = io.StringIO()

    call_command("import_inventory", write(tmp_path, full_document()), "--actor", "sec", stdout=out)

    assert "identities: 2 created, 0 updated, 0 unchanged" in out.getvalue()
    assert ServiceIdentity.objects.count() == 2
    assert AuditEntry.objects.get(object_type="inventory.import").actor == security


def test_command_defaults_to_a_superuser(tmp_path, owner, other_owner):
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    out = io.StringIO()

    call_command("import_inventory", write(tmp_path, full_document()), stdout=out)

    assert "Imported as admin" in out.getvalue()
    assert AuditEntry.objects.get(object_type="inventory.import").actor == admin


def test_command_without_superuser_or_actor_fails_clearly(tmp_path, owner):
    with pytest.raises(CommandError, match="--actor"):
        call_command("import_inventory", write(tmp_path, {}))


def test_command_refuses_a_non_security_actor(tmp_path, owner):
    with pytest.raises(CommandError, match="Only security"):
        call_command("import_inventory", write(tmp_path, {}), "--actor", "owner")


def test_command_prints_errors_and_changes_nothing(tmp_path, security, owner, other_owner):
    document = full_document()
    document["identities"][0]["environment"] = "moon"
    err = io.StringIO()
    before = table_counts()

    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("import_inventory", write(tmp_path, document), "--actor", "sec", stderr=err)

    assert "identities[0].environment: Must be one of" in err.getvalue()
    assert table_counts() == before


def test_command_rejects_malformed_json(tmp_path, security):
    path = tmp_path / "broken.json"
    path.write_text('{"tools": [')

    with pytest.raises(CommandError, match="malformed JSON"):
        call_command("import_inventory", str(path), "--actor", "sec")


# Scale: set-based, so the query count does not follow the row count


def generated_document(n_identities: int, *, n_tools: int, owner: str) -> dict[str, Any]:
    scopes = [{"provider": "github", "name": f"github:scope{n}:read", "risk": "read"} for n in range(5)]
    tools = [
        {"slug": f"tool-{n}", "name": f"Tool {n}", "kind": "agent", "owner": owner, "environment": "prod", "team": "t"}
        for n in range(n_tools)
    ]
    identities = [
        {
            "name": f"svc-{n}",
            "kind": "service_account",
            "provider": "github",
            "owner": owner,
            "environment": "prod",
            "tools": [f"tool-{n % n_tools}"],
        }
        for n in range(n_identities)
    ]
    credentials = [
        {"identity": f"svc-{n}", "kind": "api_key", "secret": f"generated-secret-{n:08d}"} for n in range(n_identities)
    ]
    grants = [{"identity": f"svc-{n}", "scope": f"github:scope{n % 5}:read"} for n in range(n_identities)]
    return {"scopes": scopes, "tools": tools, "identities": identities, "credentials": credentials, "grants": grants}


# Lookups, one insert per kind, the per-object audit entries (one insert per 1,000), the summary entry and
# savepoints; measured, not derived.
FIRST_IMPORT_QUERIES = 21
REIMPORT_QUERIES = 11


@pytest.mark.parametrize("n_identities", [10, 200])
def test_query_count_does_not_grow_with_rows(security, owner, django_assert_max_num_queries, n_identities):
    document = generated_document(n_identities, n_tools=5, owner="owner")
    # SQLite caps a statement at 999 parameters, so there 200 rows take more insert batches than 10: a few for the
    # inventory rows and nine for their ~800 audit entries (99 a statement).
    first_bound = FIRST_IMPORT_QUERIES if services.using_postgres() else FIRST_IMPORT_QUERIES + 15

    with django_assert_max_num_queries(first_bound):
        inventory_import(actor=security, document=document)
    with django_assert_max_num_queries(REIMPORT_QUERIES):
        result = inventory_import(actor=security, document=document)

    assert result.counts["identities"] == {"created": 0, "updated": 0, "unchanged": n_identities}


def test_ten_thousand_identities(security, owner):
    document = generated_document(10_000, n_tools=2_000, owner="owner")

    started = time.perf_counter()
    result = inventory_import(actor=security, document=document)
    elapsed = time.perf_counter() - started

    print(f"10k import: {elapsed:.2f}s")  # visible with -s; the bound below is loose on purpose
    assert elapsed < 60
    assert result.counts["identities"]["created"] == ServiceIdentity.objects.count() == 10_000
    assert result.counts["credentials"]["created"] == Credential.objects.count() == 10_000
    assert result.counts["tools"]["created"] == AITool.objects.count() == 2_000
    assert result.counts["bindings"]["created"] == ToolIdentity.objects.count() == 10_000
    assert result.counts["grants"]["created"] == ScopeGrant.objects.count() == 10_000
