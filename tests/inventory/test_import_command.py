"""manage.py import_inventory, and the import at scale: queries that do not grow with rows."""

import io
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inventory.imports.document import inventory_import
from inventory.models import (
    AITool,
    AuditEntry,
    Credential,
    ScopeGrant,
    ServiceIdentity,
    ToolIdentity,
)
from tests import services
from tests.factories import (
    UserFactory,
)
from tests.inventory.import_fixtures import full_document, table_counts, write

pytestmark = pytest.mark.django_db


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


# Lookups, one insert per kind, the per-object audit entries (one insert per 1,000), the summary entry, four
# INSERT ... SELECT queueing the named tools and identities for one targeted detection run, and savepoints; measured,
# not derived.
FIRST_IMPORT_QUERIES = 25
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
