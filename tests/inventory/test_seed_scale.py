"""seed_scale at toy size: COPY on PostgreSQL, bulk_create on SQLite, the same estate either way."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from inventory.management.scale_estate import OWNER_PREFIX
from inventory.models import AccessEvent, AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity
from tests.factories import ToolFactory

pytestmark = pytest.mark.django_db

SIZES = {"tools": 20, "identities": 100, "credentials": 500, "grants": 50, "scopes": 30, "owners": 24}


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_scale", stdout=out, **{**SIZES, **options})
    return out.getvalue()


def test_seeds_the_requested_counts():
    output = seed()

    assert AITool.objects.count() == 20
    assert ServiceIdentity.objects.count() == 100
    assert Credential.objects.count() == 500
    assert ScopeGrant.objects.count() == 50
    assert Scope.objects.count() == 30
    assert Team.objects.count() == 3
    assert get_user_model().objects.filter(username__startswith=OWNER_PREFIX).count() == 24
    assert "credential" in output
    assert "Seeded the inventory in" in output


def test_every_identity_sits_behind_one_or_two_tools():
    seed()

    per_identity = ServiceIdentity.objects.annotate(n=Count("bindings")).values_list("n", flat=True)
    assert set(per_identity) <= {1, 2}
    assert 100 <= ToolIdentity.objects.count() <= 110


def test_the_estate_has_the_variety_detectors_look_for():
    seed()

    owners = get_user_model().objects.filter(username__startswith=OWNER_PREFIX)
    assert owners.filter(is_active=False).exists(), "departed owners"
    assert {"prod", "staging", "dev"} <= set(AITool.objects.values_list("environment", flat=True))
    assert all(fp.startswith("hmac-sha256:") for fp in Credential.objects.values_list("fingerprint", flat=True))
    assert Credential.objects.filter(storage="vault").count() > 250
    shared = Credential.objects.values("fingerprint").annotate(n=Count("identity", distinct=True)).filter(n__gt=1)
    assert shared.exists(), "a few secrets pasted into more than one identity"
    stale = timezone.now() - timezone.timedelta(days=90)
    assert ServiceIdentity.objects.filter(last_used_at__lt=stale).exists()
    assert ScopeGrant.objects.filter(status="active").exists()


def test_refuses_a_non_empty_inventory_without_reset():
    seed()

    with pytest.raises(CommandError, match="--reset"):
        seed()
    assert AITool.objects.count() == 20


def test_reset_replaces_the_inventory():
    seed()
    seed(reset=True, tools=5, identities=10, credentials=30, grants=5)

    assert AITool.objects.count() == 5
    assert Credential.objects.count() == 30
    assert get_user_model().objects.filter(username__startswith=OWNER_PREFIX).count() == 24


def test_reset_also_clears_rows_that_point_into_the_inventory():
    seed()
    tool = AITool.objects.first()
    AccessEvent.objects.create(
        occurred_at=timezone.now(), source="gw", tool=tool, tool_ref=tool.slug, decision="deny", reason="no_grant"
    )

    # The event protects its tool (PROTECT, append-only); --reset clears both rather than failing.
    seed(reset=True)

    assert not AccessEvent.objects.exists()
    assert AITool.objects.count() == 20


def test_leaves_sequences_and_constraints_working():
    seed()

    # Ids were written explicitly; the next ORM insert must not collide with them.
    tool = ToolFactory(owner=get_user_model().objects.filter(username__startswith=OWNER_PREFIX).first())
    assert tool.pk > 20
    # The unique constraints are back after the load (PostgreSQL drops and rebuilds them around COPY).
    grant = ScopeGrant.objects.filter(status="active").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        ScopeGrant.objects.create(
            identity_id=grant.identity_id,
            scope_id=grant.scope_id,
            resource_constraint=grant.resource_constraint,
            status="active",
            granted_at=timezone.now(),
        )
