"""Documents and snapshots shared by the import tests."""

import json
from typing import Any

from django.apps import apps

from approvals.models import AccessRequest, GrantIssue
from inventory.fingerprints import digest_secret
from inventory.models import (
    AITool,
    AuditEntry,
    Credential,
    Scope,
    ScopeGrant,
    ServiceIdentity,
    Team,
    ToolIdentity,
)
from tests.factories import (
    GrantFactory,
    ToolFactory,
    UserFactory,
)

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


def write(tmp_path, document: Any) -> str:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(document))
    return str(path)
