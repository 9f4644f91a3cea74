"""Property (issue 11): through any sequence of grants, revocations, expiries, changes to the policy's inputs and
replayed request ids, authorize allows exactly when a plain-Python model of the rules allows, and never otherwise.

The model is written here from the rules as the README states them, independently of the SQL: a live, unexpired
grant of the scope for this identity and tool (or any tool) whose pattern covers the resource, approved at least as
strongly as the policy asks for the scope and the tool as they are now (approvals.policy.grant_below_policy, the
readable reference); a repeated request id is decided afresh for the same question and refused for another.
"""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.authorization import AuthorizationQuery, authorize
from approvals.policy import grant_below_policy
from inventory.models import AITool, Scope, ScopeGrant
from inventory.resources import resource_allowed
from tests.factories import BindingFactory, CredentialFactory, IdentityFactory, ScopeFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

SCOPES = ("s-read", "s-write")
CONSTRAINTS = ("", "proj:a/*", "proj:b")
RISK = {"s-read": "read", "s-write": "write"}
RESOURCES = ("", "proj:a/1", "proj:b", "proj:c", "proj:a/%2e%2e/b")


@dataclass
class ModelGrant:
    pk: int
    scope: str
    constraint: str
    approvals: int
    by_policy: bool
    for_tool: bool
    status: str = "active"
    expired: bool = False


@dataclass
class Model:
    grants: list[ModelGrant] = field(default_factory=list)
    environment: str = "dev"
    classification: str = "internal"
    sensitive: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(SCOPES, False))
    asked: dict[str, tuple] = field(default_factory=dict)

    def allows(self, scope: str, resource: str, tool: AITool, scopes: dict[str, Scope]) -> bool:
        tool.environment, tool.data_classification = self.environment, self.classification
        scope_row = scopes[scope]
        scope_row.sensitive = self.sensitive[scope]
        return any(
            g.scope == scope
            and g.status == "active"
            and not g.expired
            and resource_allowed(g.constraint, resource)
            and not grant_below_policy(approvals=g.approvals, by_policy=g.by_policy, scope=scope_row, tool=tool)
            for g in self.grants
        )


operation = st.one_of(
    st.tuples(
        st.just("grant"),
        st.sampled_from(SCOPES),
        st.sampled_from(CONSTRAINTS),
        st.sampled_from([0, 1, 2]),
        st.booleans(),
        st.booleans(),
    ),
    st.tuples(st.just("revoke"), st.integers(0, 5)),
    st.tuples(st.just("expire"), st.integers(0, 5)),
    st.tuples(st.just("environment"), st.sampled_from(["dev", "staging", "prod"])),
    st.tuples(st.just("classification"), st.sampled_from(["internal", "restricted"])),
    st.tuples(st.just("sensitive"), st.sampled_from(SCOPES), st.booleans()),
    st.tuples(st.just("ask"), st.sampled_from(SCOPES), st.sampled_from(RESOURCES), st.sampled_from(["", "r1", "r2"])),
)


@pytest.fixture
def world(owner):
    alice = UserFactory(username="alice")
    tool = ToolFactory(owner=owner, slug="t", environment="dev", data_classification="internal")
    tool.allowed_users.add(alice)
    identity = IdentityFactory(owner=owner, name="i")
    BindingFactory(tool=tool, identity=identity)
    CredentialFactory(identity=identity)
    scopes = {name: ScopeFactory(name=name, risk=RISK[name]) for name in SCOPES}
    return tool, identity, scopes


def _apply(op, model: Model, tool, identity, scopes, serial: list[int]) -> None:
    kind, *args = op
    if kind == "grant":
        scope, constraint, approvals, by_policy, for_tool = args
        if ScopeGrant.objects.filter(identity=identity, scope=scopes[scope], resource_constraint=constraint,
                                     status="active").exists():  # fmt: skip
            return  # one active grant per scope and pattern (a database constraint)
        grant = ScopeGrant.objects.create(
            identity=identity, scope=scopes[scope], tool=tool if for_tool else None, resource_constraint=constraint,
            granted_at=timezone.now(), expires_at=timezone.now() + timedelta(days=1), approvals=approvals,
            approved_by_policy=by_policy,
        )  # fmt: skip
        model.grants.append(ModelGrant(grant.pk, scope, constraint, approvals, by_policy, for_tool))
    elif kind in ("revoke", "expire") and model.grants:
        target = model.grants[args[0] % len(model.grants)]
        if kind == "revoke" and target.status == "active":
            ScopeGrant.objects.filter(pk=target.pk).update(status="revoked", revoked_at=timezone.now())
            target.status = "revoked"
        elif kind == "expire":
            ScopeGrant.objects.filter(pk=target.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
            target.expired = True
    elif kind == "environment":
        AITool.objects.filter(pk=tool.pk).update(environment=args[0])
        model.environment = args[0]
    elif kind == "classification":
        AITool.objects.filter(pk=tool.pk).update(data_classification=args[0])
        model.classification = args[0]
    elif kind == "sensitive":
        Scope.objects.filter(pk=scopes[args[0]].pk).update(sensitive=args[1])
        model.sensitive[args[0]] = args[1]
    elif kind == "ask":
        scope, resource, request_id = args
        serial[0] += 1
        query = AuthorizationQuery(tool="t", identity="i", on_behalf_of="alice", scope=scope, resource=resource,
                                   request_id=request_id)  # fmt: skip
        decision = authorize(query=query, source="gw")
        question = (scope, resource)
        reused = bool(request_id) and model.asked.setdefault(request_id, question) != question
        expected = not reused and model.allows(scope, resource, AITool(), {s: Scope(risk=RISK[s]) for s in SCOPES})
        assert decision.allowed is expected, (op, decision, model)
        if reused:
            assert decision.reason == "request_id_reused"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_authorize_agrees_with_the_model_through_any_sequence(world, operations):
    tool, identity, scopes = world
    with transaction.atomic():
        model, serial = Model(), [0]
        for op in operations:
            _apply(op, model, tool, identity, scopes, serial)
        transaction.set_rollback(True)
