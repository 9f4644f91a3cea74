"""POST /api/v1/authorize/: every reason code, the human-versus-tool rule, resource patterns, idempotency and
gateway token limits."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import authorization_store as store
from approvals.authorization import REASONS, AuthorizationQuery, authorize
from inventory.models import AccessEvent
from inventory.resources import resource_allowed
from tests.approvals.authorize_helpers import BASE, ask
from tests.factories import (
    CredentialFactory,
    GrantFactory,
    IdentityFactory,
    ToolFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_allow_with_active_matching_grant(api_as, world):
    answer = ask(api_as("gateway"))
    assert answer["decision"] == "allow" and answer["reason"] == "allowed" and answer["grant"] == world["grant"].pk
    event = AccessEvent.objects.get(pk=answer["event_id"])
    assert event.on_behalf_of == world["alice"] and event.tool == world["tool"] and event.grant == world["grant"]
    assert event.source == "gw" and event.kind == "decision"


def _retire(w):
    w["tool"].status = "retired"
    w["tool"].save()


def _unbind(w):
    w["tool"].bindings.all().delete()


def _disable(w):
    w["identity"].status = "disabled"
    w["identity"].save()


def _mark_compromised(w):
    """Contained (inventory.compromise): the identity's marker is what the statement reads."""
    w["identity"].compromised_at = timezone.now()
    w["identity"].save()


def _revoke_credentials(w):
    w["identity"].credentials.update(revoked_at=timezone.now())


def _expire_credentials(w):
    w["identity"].credentials.update(expires_at=timezone.now() - timedelta(seconds=1))


def _remove_from_team(w):
    w["team"].members.remove(w["alice"])


def _deactivate_user(w):
    w["alice"].is_active = False
    w["alice"].save()


def _revoke_grant(w):
    w["grant"].status = "revoked"
    w["grant"].save()


def _expire_grant_in_time(w):
    w["grant"].expires_at = timezone.now() - timedelta(seconds=1)
    w["grant"].save()


def _expire_grant_by_job(w):
    w["grant"].status = "expired"
    w["grant"].save()


def _delete_grant(w):
    w["grant"].delete()


def _grant_for_other_tool(w):
    w["grant"].tool = ToolFactory(owner=w["tool"].owner)
    w["grant"].save()


def _unapproved(w):
    """As an import records a grant it observed at the source: nobody approved it."""
    w["grant"].approvals = 0
    w["grant"].save()


def _one_approver_for_write(w):
    w["grant"].approvals = 1
    w["grant"].save()


def _read_grant_then_tool_to_restricted_prod(w):
    """Approved by one person for a read scope; then the owner moved the tool to restricted data in production."""
    w["scope"].risk = "read"
    w["scope"].save()
    w["grant"].approvals = 1
    w["grant"].save()
    w["tool"].environment, w["tool"].data_classification = "prod", "restricted"
    w["tool"].save()


def _auto_approved_then_tool_to_prod(w):
    w["scope"].risk = "read"
    w["scope"].save()
    # A grant's approval is only ever lowered after issue (a trigger), so the auto-approved grant is a new one.
    old = w["grant"]
    old.delete()
    w["grant"] = GrantFactory(
        identity=old.identity, scope=old.scope, tool=old.tool, resource_constraint=old.resource_constraint,
        expires_at=old.expires_at, approvals=0, approved_by_policy=True,
    )  # fmt: skip
    w["tool"].environment = "prod"
    w["tool"].save()


CASES = [
    ("invalid_request", None, {"tool": ""}),
    ("invalid_request", None, {"scope": None}),
    ("unknown_tool", None, {"tool": "no-such-tool"}),
    ("tool_inactive", _retire, {}),
    ("unknown_identity", None, {"identity": "svc-nope"}),
    ("identity_not_bound_to_tool", _unbind, {}),
    ("identity_disabled", _disable, {}),
    ("credential_compromised", _mark_compromised, {}),
    ("credential_compromised", _mark_compromised, {"credential": "hmac-sha256:unknown"}),
    ("credential_revoked", _revoke_credentials, {}),
    ("credential_revoked", _expire_credentials, {}),
    ("credential_revoked", None, {"credential": "hmac-sha256:unknown"}),
    ("unknown_user", None, {"on_behalf_of": "mallory"}),
    ("unknown_user", _deactivate_user, {}),
    ("user_not_allowed_for_tool", _remove_from_team, {}),
    ("unknown_scope", None, {"scope": "deploy:everything"}),
    ("invalid_resource", None, {"resource": "project:payments/../billing"}),
    ("invalid_resource", None, {"resource": "project:payments/%2e%2e/billing"}),
    ("invalid_resource", None, {"resource": "project:payments/..%2fbilling"}),
    ("invalid_resource", None, {"resource": "project:payments/%252e%252e/billing"}),
    ("invalid_resource", None, {"resource": "project:payments/..\\billing"}),
    ("invalid_resource", None, {"resource": "project:payments/\uff0e\uff0e/billing"}),
    ("invalid_resource", None, {"resource": "project:payments/..;/billing"}),
    ("grant_unapproved", _unapproved, {}),
    ("grant_below_policy", _one_approver_for_write, {}),
    ("grant_below_policy", _read_grant_then_tool_to_restricted_prod, {}),
    ("grant_below_policy", _auto_approved_then_tool_to_prod, {}),
    ("no_active_grant", _delete_grant, {}),
    ("no_active_grant", _grant_for_other_tool, {}),
    ("grant_revoked", _revoke_grant, {}),
    ("grant_expired", _expire_grant_in_time, {}),
    ("grant_expired", _expire_grant_by_job, {}),
    ("resource_outside_grant", None, {"resource": "project:billing/api"}),
    ("resource_outside_grant", None, {"resource": ""}),
]


@pytest.mark.parametrize(("reason", "change", "overrides"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_deny_reasons(api_as, world, reason, change, overrides):
    if change:
        change(world)
    answer = ask(api_as("gateway"), **overrides)
    assert (answer["decision"], answer["reason"], answer["grant"]) == ("deny", reason, None)
    assert AccessEvent.objects.get(pk=answer["event_id"]).reason == reason


def test_every_reason_code_is_tested():
    assert {c[0] for c in CASES} | {"allowed", "gateway_not_allowed_for_tool", "request_id_reused"} == set(REASONS)


def test_the_documented_reasons_are_the_ones_the_rules_give():
    given = {reason for reason, _ in store.rules(credential_named=True, token=True)}
    assert given | {store.NO_ACTIVE_GRANT, "invalid_request", "request_id_reused"} == set(REASONS)


def test_a_rule_that_comes_out_unknown_denies(api_as, world, monkeypatch):
    """Deny by default holds inside the statement too: a condition that is NULL refuses instead of being skipped."""
    written = store.rules
    try:
        with monkeypatch.context() as patch:
            patch.setattr(store, "rules", lambda **shape: [("tool_inactive", "NULL"), *written(**shape)])
            store.decision_sql.cache_clear()
            answer = ask(api_as("gateway"))
    finally:
        store.decision_sql.cache_clear()  # no other test may see the statement with the extra rule
    assert (answer["decision"], answer["reason"]) == ("deny", "tool_inactive")
    assert ask(api_as("gateway"))["decision"] == "allow"


def test_the_oldest_matching_grant_answers(api_as, world):
    GrantFactory(identity=world["identity"], scope=world["scope"], tool=None, resource_constraint="project:*")
    assert ask(api_as("gateway"))["grant"] == world["grant"].pk


def test_a_credential_of_another_identity_is_refused(api_as, world):
    stranger = CredentialFactory(identity=IdentityFactory(owner=world["tool"].owner))
    assert ask(api_as("gateway"), credential=str(stranger.pk))["reason"] == "credential_revoked"
    assert ask(api_as("gateway"), credential=stranger.fingerprint)["reason"] == "credential_revoked"


def test_a_deny_for_an_unknown_tool_still_records_whatever_else_it_named(api_as, world):
    answer = ask(api_as("gateway"), tool="no-such-tool", credential=str(world["credential"].pk))
    event = AccessEvent.objects.get(pk=answer["event_id"])
    assert (event.tool_id, event.tool_ref) == (None, "no-such-tool")
    assert (event.identity, event.on_behalf_of, event.scope) == (world["identity"], world["alice"], world["scope"])
    assert event.credential == world["credential"]


def test_tool_privilege_never_exceeds_the_human(api_as, world):
    """The identity holds the scope, but the human is outside the tool's audience: deny."""
    bob = UserFactory(username="bob")
    assert ask(api_as("gateway"), on_behalf_of="bob")["reason"] == "user_not_allowed_for_tool"
    world["tool"].allowed_users.add(bob)
    assert ask(api_as("gateway"), on_behalf_of="bob")["decision"] == "allow"


def test_valid_credential_by_fingerprint(api_as, world):
    answer = ask(api_as("gateway"), credential=world["credential"].fingerprint)
    assert answer["decision"] == "allow"


def test_grant_for_any_tool_applies(api_as, world):
    world["grant"].tool = None
    world["grant"].save()
    assert ask(api_as("gateway"))["decision"] == "allow"


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("owner", 403), ("other_owner", 403), ("manager", 403), ("security", 200), ("gateway", 200)],
)
def test_who_may_ask(api_as, world, role, status):
    before = AccessEvent.objects.count()
    assert api_as(role).post("/api/v1/authorize/", BASE, format="json").status_code == status
    assert AccessEvent.objects.count() == before + (1 if status == 200 else 0)


@pytest.mark.parametrize(
    "body",
    [
        [],
        ["tool"],
        "just a string",
        {"tool": {"nested": 1}, "identity": [1], "on_behalf_of": True, "scope": 1.5},
        {"tool": 10**30, "identity": "svc-release", "on_behalf_of": "alice", "scope": "deploy:release:write"},
        {"tool": -1, "identity": 0, "on_behalf_of": "alice", "scope": "deploy:release:write"},
        BASE | {"resource": "x" * 5000},
        BASE | {"resource": 42},
        BASE | {"tool": "t" * 1000},
        BASE | {"request_id": {"a": 1}},
        BASE | {"resource": "project:payments/\x00api"},
    ],
)
def test_junk_is_a_deny_never_a_500(api_as, world, body):
    response = api_as("gateway").post("/api/v1/authorize/", body, format="json")
    assert response.status_code == 200
    assert response.json()["decision"] == "deny"


def test_malformed_json_is_400(api_as, world):
    response = api_as("gateway").post("/api/v1/authorize/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_only_json_is_accepted_and_nothing_is_recorded_otherwise(api_as, world):
    before = AccessEvent.objects.count()
    response = api_as("gateway").post("/api/v1/authorize/", {"tool": "x"}, format="multipart")
    assert response.status_code == 415
    assert AccessEvent.objects.count() == before


def test_ids_work_as_well_as_natural_keys(api_as, world):
    answer = ask(
        api_as("gateway"),
        tool=world["tool"].pk,
        identity=world["identity"].pk,
        on_behalf_of=world["alice"].pk,
        scope=world["scope"].pk,
    )
    assert answer["decision"] == "allow"


@pytest.mark.parametrize(
    ("constraint", "resource", "allowed"),
    [
        ("", "anything", True),
        ("", "", True),
        ("project:payments/*", "project:payments/api", True),
        ("project:payments/*", "project:payments/api/v2", True),
        ("project:payments/*", "project:payments", False),
        ("project:payments/*", "project:paymentsX/api", False),
        ("project:payments/*", "project:billing/api", False),
        ("project:payments/*", "project:payments/../billing", False),
        ("space:SUPPORT", "space:SUPPORT", True),
        ("space:SUPPORT", "space:SUPPORT2", False),
        ("repo:acme/*/issues", "repo:acme/web/issues", True),
        ("repo:acme/*/issues", "repo:acme/web/pulls", False),
        ("a.b+c", "aXb+c", False),
        ("a.b+c", "a.b+c", True),
    ],
)
def test_resource_patterns(constraint, resource, allowed):
    assert resource_allowed(constraint, resource) is allowed


def test_service_records_every_decision(world):
    before = AccessEvent.objects.count()
    for scope in ("deploy:release:write", "nope", ""):
        query = AuthorizationQuery(tool="release-agent", identity="svc-release", on_behalf_of="alice", scope=scope)
        authorize(query=query, source="unit")
    assert AccessEvent.objects.count() == before + 3


def test_text_no_database_can_store_is_an_invalid_request_recorded_safely(world):
    query = AuthorizationQuery(
        tool="release-\ud800", identity="svc-release", on_behalf_of="alice", scope="s", resource="a\udfff"
    )
    decision = authorize(query=query, source="unit")
    assert (decision.decision, decision.reason) == ("deny", "invalid_request")
    assert set(decision.errors) == {"tool", "resource"}
    event = AccessEvent.objects.get(pk=decision.event_id)
    assert (event.tool_ref, event.resource) == ("release-?", "a?")


@pytest.mark.parametrize("role", ["gateway", "security"])
def test_query_count_is_fixed(api_as, world, role, django_assert_num_queries):
    client = api_as(role)
    # Roles, then the decision: one statement reads, decides and records.
    with django_assert_num_queries(2):
        ask(client)
    # Roles are cached on the (reused) test user now; a request id costs nothing more: the insert itself detects a
    # repeat, without a savepoint even inside a transaction.
    with django_assert_num_queries(1):
        ask(client, request_id=f"q-{role}")
    # The repeat: the insert finds the id taken, the first answer is read back, and the question is decided afresh.
    with django_assert_num_queries(3):
        ask(client, request_id=f"q-{role}")


@pytest.mark.parametrize("by_id", [False, True])
@pytest.mark.parametrize("token", [False, True])
def test_the_common_decision_statements_fit_psycopgs_parse_cache(by_id, token):
    """psycopg re-parses a statement longer than this on every call (40 us here); see `decision_sql`. A gateway
    naming a credential pays that; every other shape must not."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    sql = store.decision_sql("postgresql", by_id, by_id, by_id, by_id, "", token)
    assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH
