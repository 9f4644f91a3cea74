"""Property (issue 12): the decision statement (`authorization_store`) and its plain-Python reference
(`approvals.authorization_reference.decide_reference`) give the same reason, and the same grant, for every question in
every generated world, denies as much as allows; and every reason code the statement can give is reached.

Time stands still in each example, so a grant or credential expiring at the very moment of the decision is generated
too: `>` against `>=` on either side shows. An allow is also checked against the rows directly, without the
reference, so that a mistake both sides share in the allow path still fails.
"""

import copy
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import transaction
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from knox.models import AuthToken

from approvals.authorization import REASONS, AuthorizationQuery, authorize
from approvals.authorization_reference import Question, World, decide_reference
from approvals.models import GatewayToolLimit
from approvals.policy import grant_below_policy
from inventory.models import AITool, Credential, ScopeGrant, ServiceIdentity, ToolIdentity
from inventory.resources import resource_allowed
from tests.factories import CredentialFactory, IdentityFactory, ScopeFactory, TeamFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# Decided before the statement runs, by authorize's input checks: not the statement's to give.
REACHABLE = set(REASONS) - {"invalid_request", "request_id_reused"}

TOOLS = ("t-a", "t-b")
IDENTITIES = ("i-a", "i-b")
SCOPES = ("s-read", "s-write", "s-sens")
CONSTRAINTS = ("", "proj:a/*", "proj:b", "proj:*/x")
# Seconds from the decision; 0 expires at its very moment (and so is no longer live).
EXPIRIES = {"never": None, "past": -3600, "now": 0, "later": 3600}
MISSING_ID = 2**40


def mostly(common, *rare):
    """Lean on one value, so that the others stay the exception."""
    return st.sampled_from([common] * 8 + list(rare))


tool_facts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["active", "pilot"]),
        "environment": st.sampled_from(["dev", "prod"]),
        "data_classification": st.sampled_from(["internal", "restricted"]),
    }
)
grant_spec = st.fixed_dictionaries(
    {
        "identity": mostly("i-a", "i-b"),
        "scope": st.sampled_from(SCOPES),
        "follows_question": mostly(True, False),
        "tool": st.sampled_from(["asked", "other", None]),
        "status": mostly("active", "expired", "revoked"),
        "expires": mostly("later", "never", "past", "now"),
        "constraint": mostly(*CONSTRAINTS),
        "approvals": st.sampled_from([2, 1, 0]),
        "by_policy": st.booleans(),
    }
)
# Worlds and questions where everything checked before the grants holds: the grants decide. FAULTS then break the
# earlier rules, none to two at a time, so that every rule is reached without drowning the later ones.
worlds = st.fixed_dictionaries(
    {
        "tools": st.fixed_dictionaries(dict.fromkeys(TOOLS, tool_facts)),
        "identities": st.just(dict.fromkeys(IDENTITIES, "active")),
        "compromised": st.just(frozenset()),
        "bind_asked": st.just(True),
        "bindings": st.sets(st.tuples(st.sampled_from(TOOLS), st.sampled_from(IDENTITIES)), max_size=2),
        "credentials": st.fixed_dictionaries(
            {name: st.lists(st.sampled_from(["never", "later"]), max_size=2) for name in IDENTITIES}
        ),
        "grants": st.lists(grant_spec, min_size=1, max_size=4),
    }
)
questions = st.fixed_dictionaries(
    {
        "tool": st.sampled_from(TOOLS),
        "identity": st.sampled_from(IDENTITIES),
        "user": st.just("u-in"),
        "scope": st.sampled_from(SCOPES),
        # Each by its id, or by its natural key.
        **{f"{kind}_by_id": st.booleans() for kind in ("tool", "identity", "user", "scope")},
        "resource": st.sampled_from(["", "proj:a/1", "proj:b", "proj:c/x", "other"]),
        "credential": st.sampled_from(["", "own-id", "own-fingerprint"]),
        "token": st.sampled_from([None, "free"]),
    }
)
ASKED_TOOL, ASKED_IDENTITY = object(), object()
# What can go wrong before the grants are read: where (the world or the question, then keys), and the value put there.
FAULTS = {
    "unknown tool": (("asked", "tool"), "t-x"),
    "token fronting nothing": (("asked", "token"), "fronts-none"),
    "token fronting t-a only": (("asked", "token"), "fronts-a"),
    "retired tool": (("world", "tools", ASKED_TOOL, "status"), "retired"),
    "unknown identity": (("asked", "identity"), "i-x"),
    "identity not bound": (("world", "bind_asked"), False),
    "disabled identity": (("world", "identities", ASKED_IDENTITY), "disabled"),
    "retired identity": (("world", "identities", ASKED_IDENTITY), "retired"),
    "contained identity": (("world", "compromised"), frozenset(IDENTITIES)),
    "credentials revoked or expired": (("world", "credentials", ASKED_IDENTITY), ["revoked", "past"]),
    "credential expiring now": (("world", "credentials", ASKED_IDENTITY), ["now"]),
    "no credentials": (("world", "credentials", ASKED_IDENTITY), []),
    "another identity's credential named": (("asked", "credential"), "other-fingerprint"),
    "unknown credential id named": (("asked", "credential"), "999999"),
    "unknown user": (("asked", "user"), "u-x"),
    "inactive user": (("asked", "user"), "u-off"),
    "user the tool may not act for": (("asked", "user"), "u-out"),
    "member of a team t-a may act for": (("asked", "user"), "u-team"),
    "unknown scope": (("asked", "scope"), "s-x"),
    "traversal": (("asked", "resource"), "proj:a/../b"),
    "encoded traversal": (("asked", "resource"), "proj:a/%2e%2e/b"),
    "empty resource": (("asked", "resource"), ""),
}
# The first few of a random order, so that each fault is as likely as any other (a sampled_from would favour the
# first, and that one would mask most of the others).
faults = st.tuples(st.permutations(sorted(FAULTS)), st.integers(0, 2)).map(lambda drawn: drawn[0][: drawn[1]])


def _with_faults(world: dict, asked: dict, names: list[str]) -> tuple[dict, dict]:
    world, asked = copy.deepcopy(world), dict(asked)
    for name in names:
        (part, *path), value = FAULTS[name]
        path = [{ASKED_TOOL: asked["tool"], ASKED_IDENTITY: asked["identity"]}.get(key, key) for key in path]
        target = {"world": world, "asked": asked}[part]
        for key in path[:-1]:
            target = target.get(key, {})
        if part == "asked" or path[-1] in target:  # a fault about an unknown tool or identity changes nothing
            target[path[-1]] = value
    return world, asked


# One world and question per reason: a healthy world that allows, and the one change that gives each other reason.
BASE_WORLD = {
    "tools": {slug: {"status": "active", "environment": "dev", "data_classification": "internal"} for slug in TOOLS},
    "identities": dict.fromkeys(IDENTITIES, "active"),
    "compromised": frozenset(),
    "bind_asked": True,
    "bindings": set(),
    "credentials": {"i-a": ["never"], "i-b": []},
    "grants": [
        {"identity": "i-a", "scope": "s-read", "follows_question": True, "tool": "asked", "status": "active",
         "expires": "later", "constraint": "", "approvals": 1, "by_policy": False},
    ],
}  # fmt: skip
BASE_QUESTION = {
    "tool": "t-a",
    "identity": "i-a",
    "user": "u-in",
    "scope": "s-read",
    **{f"{kind}_by_id": False for kind in ("tool", "identity", "user", "scope")},
    "resource": "proj:a/1",
    "credential": "",
    "token": None,
}
GRANT = BASE_WORLD["grants"][0]
CASES = {
    "allowed": ({}, {}),
    "unknown_tool": ({}, {"tool": "t-x"}),
    "gateway_not_allowed_for_tool": ({}, {"token": "fronts-none"}),
    "tool_inactive": ({"tools": BASE_WORLD["tools"] | {"t-a": BASE_WORLD["tools"]["t-a"] | {"status": "retired"}}}, {}),
    "unknown_identity": ({}, {"identity": "i-x", "identity_by_id": True}),
    "identity_not_bound_to_tool": ({"bind_asked": False}, {}),
    "identity_disabled": ({"identities": {"i-a": "disabled", "i-b": "active"}}, {}),
    "credential_compromised": ({"compromised": {"i-a"}}, {}),
    "credential_revoked": ({"credentials": {"i-a": ["revoked", "now"], "i-b": []}}, {}),
    "unknown_user": ({}, {"user": "u-off"}),
    "user_not_allowed_for_tool": ({}, {"user": "u-out", "user_by_id": True}),
    "unknown_scope": ({}, {"scope": "s-x"}),
    "invalid_resource": ({}, {"resource": "proj:a/%2e%2e/b"}),
    "no_active_grant": ({"grants": []}, {}),
    "grant_unapproved": ({"grants": [GRANT | {"approvals": 0}]}, {}),
    "grant_below_policy": ({"grants": [GRANT | {"scope": "s-write"}]}, {"scope": "s-write"}),
    "resource_outside_grant": ({"grants": [GRANT | {"constraint": "proj:b"}]}, {}),
    "grant_expired": ({"grants": [GRANT | {"expires": "now"}]}, {}),
    "grant_revoked": ({"grants": [GRANT | {"status": "revoked"}]}, {}),
}


@pytest.fixture
def skeleton(owner):
    """What stays put between examples: the objects a question can name, who may be acted for, gateway tokens."""
    users = {name: UserFactory(username=name) for name in ("u-in", "u-team", "u-out")}
    users["u-off"] = UserFactory(username="u-off", is_active=False)
    team = TeamFactory(slug="team-a")
    team.members.add(users["u-team"])
    tools = {slug: ToolFactory(owner=owner, slug=slug) for slug in TOOLS}
    for tool in tools.values():
        tool.allowed_users.add(users["u-in"], users["u-off"])
    tools["t-a"].allowed_teams.add(team)
    identities = {name: IdentityFactory(owner=owner, name=name) for name in IDENTITIES}
    scopes = {
        "s-read": ScopeFactory(name="s-read", risk="read"),
        "s-write": ScopeFactory(name="s-write", risk="write"),
        "s-sens": ScopeFactory(name="s-sens", risk="read", sensitive=True),
    }
    gateway = UserFactory(username="gw", roles=["gateway"])
    tokens = {None: None}
    for key, fronts in (("free", None), ("fronts-a", ["t-a"]), ("fronts-none", [])):
        tokens[key], _ = AuthToken.objects.create(user=gateway)
        if fronts is not None:
            GatewayToolLimit.objects.create(token=tokens[key]).tools.add(*(tools[slug] for slug in fronts))
    return {"tool": tools, "identity": identities, "user": users, "scope": scopes, "token": tokens}


def _at(expires: str):
    return None if EXPIRIES[expires] is None else NOW + timedelta(seconds=EXPIRIES[expires])


def _build(skeleton: dict, world: dict, asked: dict) -> None:
    tools, identities, scopes = skeleton["tool"], skeleton["identity"], skeleton["scope"]
    for slug, facts in world["tools"].items():
        AITool.objects.filter(slug=slug).update(**facts)
    for name, status in world["identities"].items():
        ServiceIdentity.objects.filter(name=name).update(status=status)
    ServiceIdentity.objects.filter(name__in=world["compromised"]).update(compromised_at=NOW - timedelta(minutes=5))
    asked_tool, asked_identity = tools.get(asked["tool"]), identities.get(asked["identity"])
    pairs = {(tools[t], identities[i]) for t, i in world["bindings"]}
    if world["bind_asked"] and asked_tool and asked_identity:
        pairs.add((asked_tool, asked_identity))
    ToolIdentity.objects.bulk_create(ToolIdentity(tool=tool, identity=identity) for tool, identity in pairs)
    for name, states in world["credentials"].items():
        for state in states:
            revoked = state == "revoked"
            CredentialFactory(identity=identities[name], revoked_at=NOW - timedelta(days=1) if revoked else None,
                              expires_at=None if revoked else _at(state))  # fmt: skip
    for spec in world["grants"]:
        identity, scope = identities[spec["identity"]], scopes[spec["scope"]]
        if spec["follows_question"] and asked_identity and asked["scope"] in scopes:
            identity, scope = asked_identity, scopes[asked["scope"]]
        tool = asked_tool if spec["tool"] == "asked" else tools["t-b" if asked_tool == tools["t-a"] else "t-a"]
        constraint, status = spec["constraint"], spec["status"]
        live = ScopeGrant.objects.filter(identity=identity, scope=scope, resource_constraint=constraint, status=status)
        if status == "active" and live.exists():
            continue  # one active grant per identity, scope and pattern (uniq_active_grant)
        ScopeGrant.objects.create(
            identity=identity, scope=scope, tool=None if spec["tool"] is None else tool, status=status,
            resource_constraint=constraint, granted_at=NOW - timedelta(days=1), expires_at=_at(spec["expires"]),
            approvals=spec["approvals"], approved_by_policy=spec["by_policy"],
        )  # fmt: skip


def _question(skeleton: dict, asked: dict) -> Question:
    refs = {}
    for kind in ("tool", "identity", "user", "scope"):
        row = skeleton[kind].get(asked[kind])
        refs[kind] = (row.pk if row else MISSING_ID) if asked[f"{kind}_by_id"] else asked[kind]
    identity = skeleton["identity"].get(asked["identity"])
    own = Credential.objects.filter(identity=identity).order_by("pk").first() if identity else None
    other = Credential.objects.exclude(identity=identity).order_by("pk").first()
    credential = {
        "own-id": str(own.pk) if own else "",
        "own-fingerprint": own.fingerprint if own else "",
        "other-fingerprint": other.fingerprint if other else "no-such-fingerprint",
    }.get(asked["credential"], asked["credential"])
    token = skeleton["token"][asked["token"]]
    return Question(**refs, resource=asked["resource"], credential=credential, token=token.pk if token else None)


def _by_ref(model, ref: int | str, natural: str):
    return model.objects.get(**{"pk" if isinstance(ref, int) else natural: ref})


def _allow_holds_on_the_rows(question: Question, grant_id: int) -> None:
    """What an allow means, read from the rows without the reference: guards against a mistake both sides share."""
    grant = ScopeGrant.objects.select_related("identity", "scope").get(pk=grant_id)
    tool, user = _by_ref(AITool, question.tool, "slug"), _by_ref(get_user_model(), question.user, "username")
    assert tool.status != "retired" and grant.identity.status == "active"
    assert ToolIdentity.objects.filter(tool=tool, identity=grant.identity).exists()
    assert grant.tool_id in (None, tool.pk)
    assert grant.status == "active" and (grant.expires_at is None or grant.expires_at > NOW)
    assert question.identity in (grant.identity.pk, grant.identity.name)
    assert question.scope in (grant.scope.pk, grant.scope.name)
    assert resource_allowed(grant.resource_constraint, question.resource) and ".." not in question.resource
    assert not grant_below_policy(approvals=grant.approvals, by_policy=grant.approved_by_policy, scope=grant.scope,
                                  tool=tool)  # fmt: skip
    assert user.is_active
    assert tool.allowed_users.filter(pk=user.pk).exists() or tool.allowed_teams.filter(members=user).exists()


def _decide_both(skeleton: dict, world: dict, asked: dict) -> str:
    """Build the world, ask the statement and the reference, compare; nothing of the example outlives it."""
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        _build(skeleton, world, asked)
        question = _question(skeleton, asked)
        expected = decide_reference(World.from_database(NOW), question)
        query = AuthorizationQuery(question.tool, question.identity, question.user, question.scope,
                                   resource=question.resource, credential=question.credential)  # fmt: skip
        decision = authorize(query=query, source="hypothesis", token=skeleton["token"][asked["token"]])
        assert (decision.reason, decision.grant_id) == (expected.reason, expected.grant), question
        assert decision.allowed == expected.allowed
        if decision.allowed:
            _allow_holds_on_the_rows(question, decision.grant_id)
        transaction.set_rollback(True)
    return decision.reason


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_reason_has_a_world_that_gives_it(skeleton, reason):
    world_changes, question_changes = CASES[reason]
    assert _decide_both(skeleton, BASE_WORLD | world_changes, BASE_QUESTION | question_changes) == reason


def test_the_cases_name_every_reason_the_statement_gives():
    assert set(CASES) == REACHABLE


def test_the_statement_decides_as_its_reference(skeleton):
    reached = Counter()

    @settings(max_examples=200, deadline=None)
    @given(world=worlds, asked=questions, broken=faults)
    def decides_as_its_reference(world, asked, broken):
        reason = _decide_both(skeleton, *_with_faults(world, asked, broken))
        event(reason)
        reached[reason] += 1

    for world_changes, question_changes in CASES.values():
        case = {"world": BASE_WORLD | world_changes, "asked": BASE_QUESTION | question_changes, "broken": []}
        decides_as_its_reference = example(**case)(decides_as_its_reference)
    decides_as_its_reference()
    assert set(reached) == REACHABLE, sorted(REACHABLE - set(reached))
