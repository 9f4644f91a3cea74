"""The discovery API from outside: who may call it, and the sync rules (upsert, gone, dry run, idempotence,
provenance, audit, all or nothing) for every source kind, through POST /api/v1/sources/{kind}/import/."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inventory.imports.sources.kinds import KINDS
from inventory.models import AuditEntry, Credential, ScopeGrant, ServiceIdentity, SourceObject, SourceRun
from tests.inventory.discovery.helpers import HOME_TENANT, K8S_TOKEN, fixture, post, state
from tests.secret_search import rows_containing

pytestmark = pytest.mark.django_db
ROLES = [
    ("anonymous", 401),
    ("owner", 403),
    ("other_owner", 403),
    ("manager", 403),
    ("gateway", 403),
    ("security", 200),
]
# What each first file creates, then what the second (changed, some gone) does with full=1.
FIRST = {
    "aws-credential-report": (4, 6),
    "gcp-service-account-keys": (3, 3),
    "github-fine-grained-pats": (3, 3),
    "github-app-installations": (3, 0),
    "okta-apps": (3, 0),
    "okta-api-tokens": (2, 2),
    "entra-service-principals": (3, 3),
    "kubernetes-service-accounts": (3, 2),
    "openai-admin-keys": (2, 2),
    "anthropic-api-keys": (2, 2),
}
SECOND_GONE = {
    "aws-credential-report": (1, 2),
    "gcp-service-account-keys": (0, 1),
    "github-fine-grained-pats": (1, 1),
    "github-app-installations": (2, 0),
    "okta-apps": (1, 0),
    "okta-api-tokens": (1, 1),
    "entra-service-principals": (1, 2),
    "kubernetes-service-accounts": (1, 1),
    "openai-admin-keys": (1, 1),
    "anthropic-api-keys": (1, 1),
}


def pair(counts: dict) -> tuple[int, int]:
    return counts["identities"], counts["credentials"]


@pytest.mark.parametrize(("role", "expected"), ROLES)
def test_only_security_may_import(api_as, role, expected):
    response = post(api_as(role), "okta-apps", fixture("okta-apps"))
    assert response.status_code == expected
    assert ServiceIdentity.objects.exists() is (expected == 200)


@pytest.mark.parametrize(("role", "expected"), ROLES)
def test_only_security_may_list_sources_and_read_runs(api_as, role, expected, security):
    post(api_as("security"), "okta-apps", fixture("okta-apps"))
    run = SourceRun.objects.get()
    client = api_as(role)
    listing = client.get("/api/v1/sources/")
    detail = client.get(f"/api/v1/sources/runs/{run.pk}/")
    assert (listing.status_code, detail.status_code) == (expected, expected)
    if expected == 200:
        assert {k["kind"] for k in listing.json()["kinds"]} == set(KINDS)
        assert listing.json()["runs"][0]["id"] == run.pk
        assert detail.json()["actor"] == security.username and detail.json()["counts"]["created"]["identities"] == 3


def test_unknown_run_and_kind_are_404(api_as):
    client = api_as("security")
    assert client.get("/api/v1/sources/runs/999999/").status_code == 404
    assert post(client, "myspace-friends", b"[]").status_code == 404


@pytest.mark.parametrize("kind", list(KINDS))
def test_first_import_then_reimport_writes_nothing(api_as, kind):
    client = api_as("security")
    first = post(client, kind, fixture(kind), account=HOME_TENANT)
    assert first.status_code == 200, first.json()
    body = first.json()
    assert set(body) == {"run", "kind", "dry_run", "created", "updated", "unchanged", "gone", "warnings"}
    assert pair(body["created"]) == FIRST[kind] and body["run"] is not None and body["dry_run"] is False
    before = state()

    again = post(client, kind, fixture(kind), account=HOME_TENANT).json()

    assert again["run"] is None
    assert pair(again["unchanged"]) == FIRST[kind]
    assert pair(again["created"]) == pair(again["updated"]) == pair(again["gone"]) == (0, 0)
    assert state() == before


@pytest.mark.parametrize("kind", list(KINDS))
def test_dry_run_reports_the_same_counts_and_changes_nothing(api_as, kind):
    client = api_as("security")
    post(client, kind, fixture(kind), account=HOME_TENANT)
    before = state()

    dry = post(client, kind, fixture(kind, "2"), full=1, dry_run=1, account=HOME_TENANT).json()

    assert dry["dry_run"] is True and dry["run"] is None
    assert state() == before
    real = post(client, kind, fixture(kind, "2"), full=1, account=HOME_TENANT).json()
    for name in ("created", "updated", "unchanged", "gone"):
        assert dry[name] == real[name], name
    assert pair(real["gone"]) == SECOND_GONE[kind]


@pytest.mark.parametrize("kind", list(KINDS))
def test_full_marks_what_disappeared_gone_revokes_and_deletes_nothing(api_as, kind):
    client = api_as("security")
    post(client, kind, fixture(kind), account=HOME_TENANT)
    identities, credentials = ServiceIdentity.objects.count(), Credential.objects.count()

    body = post(client, kind, fixture(kind, "2"), full=1, account=HOME_TENANT).json()

    gone = SourceObject.objects.filter(gone_at__isnull=False)
    assert pair(body["gone"]) == SECOND_GONE[kind]
    assert gone.count() == sum(SECOND_GONE[kind])
    assert all("No longer listed by " + kind in g.gone_reason for g in gone)
    for source in gone.filter(object_type="credential").select_related("credential"):
        assert source.credential.revoked_at is not None
    for source in gone.filter(object_type="identity").select_related("identity"):
        assert source.identity.status == "disabled"
    # Nothing deleted: the second file's new objects are added to what was there.
    assert ServiceIdentity.objects.count() >= identities and Credential.objects.count() >= credentials
    audited = AuditEntry.objects.filter(action__in=["credential.revoked_at_source", "identity.gone_at_source"])
    assert audited.count() <= sum(SECOND_GONE[kind])
    assert all(entry.after["reason"].startswith("No longer listed by") and entry.before for entry in audited)


def test_without_full_nothing_is_gone(api_as):
    client = api_as("security")
    post(client, "okta-apps", fixture("okta-apps"))
    body = post(client, "okta-apps", fixture("okta-apps", "2")).json()
    assert pair(body["gone"]) == (0, 0)
    assert not SourceObject.objects.filter(gone_at__isnull=False).exists()


def test_provenance_and_audit_with_before_and_after(api_as, security):
    client = api_as("security")
    post(client, "github-fine-grained-pats", fixture("github-fine-grained-pats"), account="acme")
    source = SourceObject.objects.get(object_type="identity", external_id="pat:501")
    assert (source.provider, source.kind, source.account) == ("github", "github-fine-grained-pats", "acme")
    first_seen = source.first_seen_at
    created = AuditEntry.objects.filter(action="identity.discovered", object_id=str(source.identity_id)).get()
    assert created.before is None and created.after["external_id"] == "pat:501" and created.actor == security

    post(client, "github-fine-grained-pats", fixture("github-fine-grained-pats", "2"), full=1, account="acme")

    source.refresh_from_db()
    assert source.first_seen_at == first_seen and source.last_seen_at > first_seen
    change = AuditEntry.objects.get(
        action="credential.source_updated", object_id=str(source.identity.credentials.get().pk)
    )
    assert change.before["expires_at"].startswith("2025-12-31") and change.after["expires_at"].startswith("2026-06-30")
    summary = AuditEntry.objects.filter(action="source.imported").order_by("-pk").first()
    assert summary.after["kind"] == "github-fine-grained-pats" and len(summary.after["file_digest"]) == 64


def test_credential_gone_then_listed_live_again_stays_revoked_with_a_warning(api_as):
    client = api_as("security")
    post(client, "anthropic-api-keys", fixture("anthropic-api-keys"))
    post(client, "anthropic-api-keys", b'{"data": []}', full=1)
    assert not Credential.objects.filter(revoked_at__isnull=True).exists()

    body = post(client, "anthropic-api-keys", fixture("anthropic-api-keys")).json()

    assert not Credential.objects.filter(revoked_at__isnull=True).exists()
    assert any("never un-revokes" in w["message"] for w in body["warnings"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_file_is_rejected_whole_naming_line_or_path_and_field(api_as, kind):
    client = api_as("security")
    post(client, kind, fixture(kind), account=HOME_TENANT)
    before = state()

    response = post(client, kind, fixture(kind, "bad"), full=1, account=HOME_TENANT)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors and all(("line" in e or "path" in e) and "field" in e and e["message"] for e in errors)
    assert any(e["field"] for e in errors)
    assert state() == before


@pytest.mark.parametrize(
    ("body", "params"),
    [(b"", {}), (b"{not json", {}), (b'{"x": 1}', {}), (b"\xff\xfe", {}), (b"[]", {"full": "maybe"}),
     (b"[]", {"dry_run": "yes please"}), (b"[]", {"account": "a%0Ab"})],
)  # fmt: skip
def test_malformed_requests_are_400_and_change_nothing(api_as, body, params):
    response = post(api_as("security"), "okta-apps", body, **params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]
    assert not SourceRun.objects.exists()


@pytest.mark.parametrize("kind", list(KINDS))
def test_empty_export_is_fine(api_as, kind):
    body = post(api_as("security"), kind, fixture(kind, "empty"), account=HOME_TENANT).json()
    assert body["run"] is None and pair(body["created"]) == (0, 0)


def test_multipart_upload(api_as):
    upload = SimpleUploadedFile("apps.json", fixture("okta-apps"), content_type="application/json")
    response = api_as("security").post(
        "/api/v1/sources/okta-apps/import/?account=acme", {"file": upload}, format="multipart"
    )
    assert response.status_code == 200 and pair(response.json()["created"]) == (3, 0)


def test_kubernetes_token_kept_as_fingerprint_and_last4_only(api_as):
    post(api_as("security"), "kubernetes-service-accounts", fixture("kubernetes-service-accounts"))
    token = Credential.objects.get(identity__external_id="system:serviceaccount:ml:inference")
    assert token.fingerprint.startswith("hmac-sha256:") and token.last4 == K8S_TOKEN[-4:]
    assert rows_containing(K8S_TOKEN) == [] and rows_containing(K8S_TOKEN[:30]) == []
    # The Opaque secret in the same export is never read.
    assert rows_containing("c3VwZXJzZWNyZXQ=") == [] and rows_containing("supersecret") == []


def test_owners_by_username_or_email_else_unassigned(api_as, owner, other_owner):
    owner.email = "owner@example.com"
    owner.save()
    client = api_as("security")
    post(client, "github-fine-grained-pats", fixture("github-fine-grained-pats"))
    post(client, "openai-admin-keys", fixture("openai-admin-keys"))
    by_ext = {i.external_id: i.owner.username for i in ServiceIdentity.objects.select_related("owner")}
    assert by_ext["pat:501"] == "owner" and by_ext["pat:503"] == "owner2"
    assert by_ext["pat:502"] == "unassigned"  # alice-gh is nobody here
    assert by_ext["key_def"] == "owner"  # by e-mail
    assert by_ext["key_abc"] == "unassigned"  # a service account's key


def test_imported_permissions_never_become_grants(api_as):
    client = api_as("security")
    post(client, "github-fine-grained-pats", fixture("github-fine-grained-pats"))
    post(client, "github-app-installations", fixture("github-app-installations"))
    assert ScopeGrant.objects.count() == 0
    source = SourceObject.objects.get(external_id="app-installation:11")
    assert source.attributes["permissions"]["contents"] == "write"


def test_special_values_of_the_aws_report(api_as):
    post(api_as("security"), "aws-credential-report", fixture("aws-credential-report"))
    root = SourceObject.objects.get(object_type="identity", external_id="arn:aws:iam::123456789012:root")
    assert root.is_root
    alice = ServiceIdentity.objects.get(external_id="arn:aws:iam::123456789012:user/alice")
    assert alice.interactive_use_seen  # console password beside an active key
    key = alice.credentials.get(kind="api_key")
    assert key.last_used_at is None  # no_information
    bot_key = Credential.objects.get(identity__external_id="arn:aws:iam::123456789012:user/old-bot")
    assert bot_key.revoked_at is not None  # access_key_1_active false
    ci = ServiceIdentity.objects.get(external_id="arn:aws:iam::123456789012:user/ci-deployer")
    assert ci.credentials.filter(revoked_at__isnull=True).count() == 2 and not ci.interactive_use_seen


def test_ai_tools_found_become_suggestions(api_as):
    from inventory.models import AIToolSuggestion

    client = api_as("security")
    post(client, "github-app-installations", fixture("github-app-installations"))
    post(client, "okta-apps", fixture("okta-apps"))
    post(client, "anthropic-api-keys", fixture("anthropic-api-keys"))
    keys = set(AIToolSuggestion.objects.values_list("catalog_key", flat=True))
    assert {"coderabbit", "devin", "glean", "anthropic-api"} <= keys
    assert "dependabot-preview" not in keys
    devin = AIToolSuggestion.objects.get(catalog_key="devin")
    assert devin.identities.get().external_id == "app-installation:12" and devin.status == "open"


def test_an_object_another_account_listed_is_found_again_not_created_twice(api_as):
    """A first import of an account looks nothing up only while nothing else of the provider is known; once another
    account (or kind) listed the same object, the lookup finds it: no second identity, no refused import."""
    client = api_as("security")
    first = post(client, "aws-credential-report", fixture("aws-credential-report"), account="alpha").json()
    identities, credentials = ServiceIdentity.objects.count(), Credential.objects.count()

    again = post(client, "aws-credential-report", fixture("aws-credential-report"), account="beta")

    assert again.status_code == 200, again.json()
    assert again.json()["created"] == {"identities": 0, "credentials": 0}
    assert (ServiceIdentity.objects.count(), Credential.objects.count()) == (identities, credentials)
    assert first["created"]["identities"] == identities
