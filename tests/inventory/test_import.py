"""POST /api/v1/import/ and inventory_import: upsert by natural key, all or nothing, and who may import."""

import json
from datetime import UTC, datetime

import pytest
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient

from inventory.fingerprints import digest_secret
from inventory.imports.document import MAX_ERRORS, ImportRejected, inventory_import
from inventory.models import (
    AITool,
    AuditEntry,
    Credential,
    ScopeGrant,
    ServiceIdentity,
)
from tests.factories import (
    BindingFactory,
    CredentialFactory,
    IdentityFactory,
    ScopeFactory,
    TeamFactory,
    ToolFactory,
    UserFactory,
)
from tests.inventory.import_fixtures import (
    SECRET,
    URL,
    full_document,
    inventory_snapshot,
    paths,
    post,
    table_counts,
    unapproved_grant,
)

pytestmark = pytest.mark.django_db


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
