"""Each detector against data that should and should not trip it, boundaries included (exactly N days)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone

from approvals import services as approval_services
from inventory.detection import registry
from inventory.detection.scan import scan_create, scan_run
from inventory.models import AccessEvent, Finding, ToolSecretMatch
from tests.factories import (
    BindingFactory,
    CredentialFactory,
    GrantFactory,
    IdentityFactory,
    ScopeFactory,
    ToolFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEAKED = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
DAY = timedelta(days=1)


def found(key: str) -> set[tuple[str, int]]:
    """Run one detector in a fresh scan at NOW; the subjects it reports."""
    with time_machine.travel(NOW, tick=False):
        scan = scan_run(scan_create(detectors=[key]).pk)
    assert "error" not in scan.counts[key], scan.counts[key]
    unresolved = Finding.objects.filter(detector=key).unresolved()
    return set(unresolved.values_list("subject_type", "subject_id"))


def cred(**kwargs):
    defaults = {"created_at": NOW - 10 * DAY, "last_rotated_at": NOW - DAY, "expires_at": NOW + 60 * DAY}
    return CredentialFactory(**(defaults | {"last_used_at": NOW - DAY} | kwargs))


def test_registry_has_every_detector():
    keys = {d.key for d in registry.all_detectors()}
    assert keys == {
        "credential_not_rotated", "credential_stale", "credential_expiring", "grant_unused", "identity_orphaned",
        "identity_reused", "identity_env_mixed", "identity_human_use", "secret_exposed", "secret_in_prompt",
        "third_party_unreviewed", "tool_unmediated", "grant_unapproved", "fact_change_unreviewed",
        # What the discovery sources reveal (tests/inventory/discovery/test_source_detectors.py).
        "source_root_key_active", "source_two_active_keys", "source_key_exposed", "source_pat_no_expiry",
        "source_secret_expiring", "source_legacy_token", "credential_use_unknown", "ai_tool_unregistered",
        # Incident response: an exposure left uncontained (tests/alerts/test_containment.py).
        "exposure_uncontained",
    }  # fmt: skip


class TestCredentialNotRotated:
    def test_boundary(self):
        exactly = cred(last_rotated_at=NOW - 90 * DAY)
        just_inside = cred(last_rotated_at=NOW - 90 * DAY + timedelta(seconds=1))
        never_rotated_old = cred(last_rotated_at=None, created_at=NOW - 91 * DAY)
        never_rotated_new = cred(last_rotated_at=None, created_at=NOW - 10 * DAY)
        revoked = cred(last_rotated_at=NOW - 400 * DAY, revoked_at=NOW - DAY)
        result = found("credential_not_rotated")
        assert ("credential", exactly.pk) in result and ("credential", never_rotated_old.pk) in result
        for fine in (just_inside, never_rotated_new, revoked):
            assert ("credential", fine.pk) not in result

    def test_static_secret_without_expiry_is_long_lived(self):
        static = cred(kind="api_key", expires_at=None)
        token = cred(kind="access_token", expires_at=None)
        result = found("credential_not_rotated")
        assert ("credential", static.pk) in result and ("credential", token.pk) not in result


class TestCredentialStale:
    def test_boundary(self):
        exactly = cred(last_used_at=NOW - 90 * DAY)
        recent = cred(last_used_at=NOW - 89 * DAY)
        never_used_old = cred(last_used_at=None, created_at=NOW - 90 * DAY)
        never_used_new = cred(last_used_at=None, created_at=NOW - 89 * DAY)
        result = found("credential_stale")
        assert {("credential", exactly.pk), ("credential", never_used_old.pk)} <= result
        assert not {("credential", recent.pk), ("credential", never_used_new.pk)} & result


class TestCredentialExpiring:
    def test_expiring_without_successor(self):
        identity = IdentityFactory()
        lonely = cred(identity=identity, expires_at=NOW + 14 * DAY)
        later = cred(expires_at=NOW + 15 * DAY)
        expired = cred(expires_at=NOW - DAY)
        replaced = cred(expires_at=NOW + 3 * DAY, created_at=NOW - 30 * DAY)
        cred(identity=replaced.identity, created_at=NOW - DAY, expires_at=NOW + 90 * DAY)
        result = found("credential_expiring")
        assert ("credential", lonely.pk) in result
        assert not {("credential", later.pk), ("credential", expired.pk), ("credential", replaced.pk)} & result


class TestGrantUnused:
    def test_unused_and_broad(self):
        tool = ToolFactory()
        identity = IdentityFactory()
        BindingFactory(tool=tool, identity=identity)
        unused = GrantFactory(identity=identity, last_used_at=NOW - 60 * DAY, granted_at=NOW - 100 * DAY)
        used = GrantFactory(identity=identity, last_used_at=NOW - 59 * DAY, granted_at=NOW - 100 * DAY)
        fresh = GrantFactory(identity=identity, last_used_at=None, granted_at=NOW - 59 * DAY)
        admin = GrantFactory(identity=identity, scope=ScopeFactory(risk="admin"), last_used_at=NOW, granted_at=NOW)
        wildcard = GrantFactory(identity=identity, scope=ScopeFactory(name="repo:*"), last_used_at=NOW, granted_at=NOW)
        lone = IdentityFactory()
        admin_no_tool = GrantFactory(identity=lone, scope=ScopeFactory(risk="admin"), last_used_at=NOW, granted_at=NOW)
        revoked = GrantFactory(identity=identity, status="revoked", last_used_at=None, granted_at=NOW - 400 * DAY)
        result = found("grant_unused")
        assert {("grant", g.pk) for g in (unused, admin, wildcard)} <= result
        assert not {("grant", g.pk) for g in (used, fresh, admin_no_tool, revoked)} & result


class TestIdentityOrphaned:
    def test_departed_owner_or_no_active_tool(self):
        departed = UserFactory(is_active=False)
        gone_owner = IdentityFactory(owner=departed)
        BindingFactory(identity=gone_owner)
        unbound = IdentityFactory()
        behind_retired = IdentityFactory()
        BindingFactory(identity=behind_retired, tool=ToolFactory(status="retired"))
        healthy = IdentityFactory()
        BindingFactory(identity=healthy)
        disabled = IdentityFactory(status="disabled")
        result = found("identity_orphaned")
        assert {("identity", i.pk) for i in (gone_owner, unbound, behind_retired)} <= result
        assert not {("identity", i.pk) for i in (healthy, disabled)} & result


class TestIdentityReused:
    def test_two_tools_or_shared_secret(self):
        shared = IdentityFactory()
        BindingFactory(identity=shared)
        BindingFactory(identity=shared)
        single = IdentityFactory()
        BindingFactory(identity=single)
        a, b = IdentityFactory(), IdentityFactory()
        cred(identity=a, fingerprint="hmac-sha256:same")
        cred(identity=b, fingerprint="hmac-sha256:same")
        c = IdentityFactory()
        cred(identity=c, fingerprint="hmac-sha256:revoked-twin", revoked_at=NOW)
        cred(identity=single, fingerprint="hmac-sha256:revoked-twin")
        result = found("identity_reused")
        assert {("identity", i.pk) for i in (shared, a, b)} <= result
        assert not {("identity", i.pk) for i in (single, c)} & result


class TestIdentityEnvMixed:
    def test_prod_and_non_prod(self):
        mixed = IdentityFactory()
        BindingFactory(identity=mixed, tool=ToolFactory(environment="prod"))
        BindingFactory(identity=mixed, tool=ToolFactory(environment="dev"))
        prod_only = IdentityFactory()
        BindingFactory(identity=prod_only, tool=ToolFactory(environment="prod"))
        BindingFactory(identity=prod_only, tool=ToolFactory(environment="prod"))
        non_prod = IdentityFactory()
        BindingFactory(identity=non_prod, tool=ToolFactory(environment="dev"))
        BindingFactory(identity=non_prod, tool=ToolFactory(environment="staging"))
        result = found("identity_env_mixed")
        assert ("identity", mixed.pk) in result
        assert not {("identity", prod_only.pk), ("identity", non_prod.pk)} & result


class TestIdentityHumanUse:
    def test_interactive_sign_ins(self):
        seen = IdentityFactory(interactive_use_seen=True)
        clean = IdentityFactory(interactive_use_seen=False)
        retired = IdentityFactory(interactive_use_seen=True, status="retired")
        result = found("identity_human_use")
        assert ("identity", seen.pk) in result
        assert not {("identity", clean.pk), ("identity", retired.pk)} & result


class TestSecretExposed:
    def test_storage_and_scanned_text(self, owner):
        from inventory import services

        in_prompt = cred(storage="prompt")
        in_repo = cred(storage="repository")
        vaulted = cred(storage="vault")
        revoked = cred(storage="prompt", revoked_at=NOW)
        tool = services.tool_create(
            actor=owner,
            data={"name": "Leaky", "slug": "leaky", "kind": "assistant", "environment": "dev",
                  "prompt_templates": f"You are helpful.\nUse key {LEAKED} now."},
        )  # fmt: skip
        clean_tool = ToolFactory(prompt_templates="Be kind.")
        in_config = ToolFactory(connector_config=f"token: {LEAKED}")
        services.tool_store_scanned_text(tool=in_config, texts={"connector_config": f"token: {LEAKED}"})
        exposed, in_prompts = found("secret_exposed"), found("secret_in_prompt")
        # The prompt case alone is secret_in_prompt's, which decides LLM07; connector text and repositories are not.
        assert {("credential", in_prompt.pk), ("tool", tool.pk)} <= in_prompts
        assert {("credential", in_repo.pk), ("tool", in_config.pk)} <= exposed
        assert not {("credential", in_repo.pk), ("tool", in_config.pk)} & in_prompts
        assert not {("credential", in_prompt.pk), ("tool", tool.pk)} & exposed
        unexposed = {("credential", vaulted.pk), ("credential", revoked.pk), ("tool", clean_tool.pk)}
        assert not unexposed & (exposed | in_prompts)

    def test_text_is_stored_redacted(self, owner):
        from inventory import services
        from tests.secret_search import rows_containing

        secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
        tool = services.tool_create(
            actor=owner,
            data={"name": "Leaky", "slug": "leaky", "kind": "agent", "environment": "dev",
                  "connector_config": f"endpoint: https://api.example.test\napi_key: {secret}\n"},
        )  # fmt: skip
        tool.refresh_from_db()
        assert secret not in tool.connector_config and "[REDACTED" in tool.connector_config
        assert rows_containing(secret) == []
        match = ToolSecretMatch.objects.get(tool=tool)
        assert match.field == "connector_config" and match.line_number == 2 and secret not in match.redacted
        services.tool_update(actor=owner, tool=tool, data={"connector_config": "endpoint: https://api.example.test"})
        assert not ToolSecretMatch.objects.filter(tool=tool).exists()


class TestThirdPartyUnreviewed:
    def test_boundary(self):
        exactly = IdentityFactory(third_party=True, last_reviewed_at=NOW - 180 * DAY)
        recent = IdentityFactory(third_party=True, last_reviewed_at=NOW - 179 * DAY)
        never = IdentityFactory(third_party=True, last_reviewed_at=None)
        in_house = IdentityFactory(third_party=False, last_reviewed_at=None)
        result = found("third_party_unreviewed")
        assert {("identity", exactly.pk), ("identity", never.pk)} <= result
        assert not {("identity", recent.pk), ("identity", in_house.pk)} & result


class TestToolUnmediated:
    def test_grants_without_mediation_or_attribution(self):
        def tool_with_grant(**kwargs):
            tool = ToolFactory(**kwargs)
            identity = IdentityFactory()
            BindingFactory(tool=tool, identity=identity)
            GrantFactory(identity=identity, expires_at=NOW + 30 * DAY)
            return tool

        unmediated = tool_with_grant(enforces_authorization=False)
        mediated = tool_with_grant(enforces_authorization=True)
        anonymous = tool_with_grant(enforces_authorization=True)
        AccessEvent.objects.create(occurred_at=NOW - DAY, tool=anonymous, source="gw", decision="allow", reason="x")
        old_anonymous = tool_with_grant(enforces_authorization=True)
        AccessEvent.objects.create(
            occurred_at=NOW - 8 * DAY, tool=old_anonymous, source="gw", decision="allow", reason="x"
        )
        no_grants = ToolFactory(enforces_authorization=False)
        retired = tool_with_grant(enforces_authorization=False, status="retired")
        result = found("tool_unmediated")
        assert {("tool", unmediated.pk), ("tool", anonymous.pk)} <= result
        assert not {("tool", t.pk) for t in (mediated, old_anonymous, no_grants, retired)} & result

    def test_only_a_gateway_accounts_allows_mediate(self, users):
        """Calls arriving through a gateway make a tool mediated; security asking /authorize/ by hand does not."""
        asked = {}
        users["security"].groups.add(Group.objects.get_or_create(name="gateway")[0])  # both: asking by hand still
        for role in ("gateway", "security"):
            tool = ToolFactory(enforces_authorization=False)
            identity = IdentityFactory()
            BindingFactory(tool=tool, identity=identity)
            GrantFactory(identity=identity, expires_at=NOW + 30 * DAY)
            AccessEvent.objects.create(occurred_at=NOW - DAY, tool=tool, source=users[role].username,
                                       decision="allow", reason="granted", on_behalf_of=users["owner"],
                                       on_behalf_of_ref=users["owner"].username)  # fmt: skip
            asked[role] = tool
        result = found("tool_unmediated")
        assert ("tool", asked["security"].pk) in result and ("tool", asked["gateway"].pk) not in result


class TestGrantUnapproved:
    def test_without_request_or_beyond_approval(self, owner, security):
        tool = ToolFactory(owner=owner, environment="dev")
        identity = IdentityFactory(owner=owner)
        BindingFactory(tool=tool, identity=identity)
        scope = ScopeFactory(name="kb:read")
        imported = GrantFactory(identity=identity, expires_at=NOW + 30 * DAY)
        with time_machine.travel(NOW - DAY, tick=False):
            request = approval_services.request_file(
                requester=owner, tool=tool, identity=identity, items=[approval_services.ScopeItem(scope)],
                justification="The assistant reads the knowledge base for support answers.", duration_days=14,
            )  # fmt: skip
            approval_services.request_decide(actor=security, request_id=request.pk, kind="approve")
        approved = request.issues.get().grant
        stretched_request = approval_services.request_file(
            requester=owner, tool=tool, identity=identity, items=[approval_services.ScopeItem(ScopeFactory(name="x"))],
            justification="The assistant needs a second scope for the same job today.", duration_days=5,
        )  # fmt: skip
        approval_services.request_decide(actor=security, request_id=stretched_request.pk, kind="approve")
        stretched = stretched_request.issues.get().grant
        stretched.expires_at = timezone.now() + 365 * DAY
        stretched.save()
        result = found("grant_unapproved")
        assert {("grant", imported.pk), ("grant", stretched.pk)} <= result
        assert ("grant", approved.pk) not in result
