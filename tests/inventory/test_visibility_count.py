"""An owner's identities: the rows `visible_to` gives are the definition computed in Python, and `count()` (which
counts an owner's untouched scope from the union of two id sets, not through the rows) always equals the number of
rows the queryset yields, whatever was chained on after the scope."""

import copy

import pytest
from django.db import connection
from django.db.models import Count, F
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory import selectors
from inventory.models import AITool, ServiceIdentity, ToolIdentity
from tests.factories import IdentityFactory, ToolFactory, UserFactory

pytestmark = pytest.mark.django_db

OWNERS = 3
TOOLS = 4
IDENTITIES = 6
ENVIRONMENTS = ("prod", "dev")


@pytest.fixture
def world(security):
    owners = [UserFactory(username=f"vis-owner-{n}") for n in range(OWNERS)]
    tools = [ToolFactory(owner=owners[0], slug=f"vis-tool-{n}") for n in range(TOOLS)]
    identities = [IdentityFactory(owner=owners[0], name=f"vis-identity-{n}") for n in range(IDENTITIES)]
    return owners, tools, identities, security


def visible_in_python(user, tool_owner: dict, identity_owner: dict, bindings: set) -> set:
    """The definition: an owner sees the identities they own and those behind a tool they own."""
    return {
        identity
        for identity, owner in identity_owner.items()
        if owner == user.pk or any(tool_owner[tool] == user.pk for tool, bound in bindings if bound == identity)
    }


def derived(scope, user, env):
    """Querysets chained on after the scope: some keep its rows, some filter, join, group, slice or combine them."""
    return {
        "scope": scope,
        "ordered": scope.order_by("-name"),
        "select_related": scope.select_related("owner"),
        "annotated": scope.annotate(owner_name=F("owner__username")),
        "page": scope[:2],
        "offset page": scope[1:3],
        "past the end": scope[5:9],
        "empty slice": scope[0:0],
        "capped": scope.order_by()[:4],
        "filtered": scope.filter(environment=env),
        "excluded": scope.exclude(owner=user),
        "joined, repeating rows": scope.filter(tools__owner=user),
        "joined, distinct": scope.filter(tools__owner=user).distinct(),
        "annotated through a join": scope.annotate(tool_slug=F("tools__slug")),
        "grouped": scope.values("environment").annotate(n=Count("*")),
        "distinct values": scope.values("environment").order_by().distinct(),
        "aggregate annotation": scope.annotate(n=Count("tools")),
        "or-combined": scope | ServiceIdentity.objects.filter(environment=env),
        "scoped after a filter": ServiceIdentity.objects.filter(environment=env).visible_to(user),
        "scoped after a join": ServiceIdentity.objects.annotate(tool_slug=F("tools__slug")).visible_to(user),
        "none": scope.none(),
        "deep copy": copy.deepcopy(scope),
        "list selector": selectors.identity_list(user=user),
        "api selector": selectors.identity_list(user=user, credential_counts=False),
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tool_owners=st.lists(st.integers(0, OWNERS - 1), min_size=TOOLS, max_size=TOOLS),
    identity_owners=st.lists(st.integers(0, OWNERS - 1), min_size=IDENTITIES, max_size=IDENTITIES),
    environments=st.lists(st.sampled_from(ENVIRONMENTS), min_size=IDENTITIES, max_size=IDENTITIES),
    bindings=st.sets(st.tuples(st.integers(0, TOOLS - 1), st.integers(0, IDENTITIES - 1)), max_size=12),
    env=st.sampled_from(ENVIRONMENTS),
)
def test_counts_equal_rows_and_rows_equal_the_definition(
    world, tool_owners, identity_owners, environments, bindings, env
):
    owners, tools, identities, security = world
    for tool, owner in zip(tools, tool_owners, strict=True):
        AITool.objects.filter(pk=tool.pk).update(owner=owners[owner])
    for identity, owner, environment in zip(identities, identity_owners, environments, strict=True):
        ServiceIdentity.objects.filter(pk=identity.pk).update(owner=owners[owner], environment=environment)
    ToolIdentity.objects.all().delete()
    ToolIdentity.objects.bulk_create(ToolIdentity(tool=tools[t], identity=identities[i]) for t, i in bindings)

    tool_owner = {tool.pk: owners[owner].pk for tool, owner in zip(tools, tool_owners, strict=True)}
    identity_owner = {
        identity.pk: owners[owner].pk for identity, owner in zip(identities, identity_owners, strict=True)
    }
    bound = {(tools[t].pk, identities[i].pk) for t, i in bindings}
    for user in [*owners, security]:
        scope = ServiceIdentity.objects.visible_to(user)
        expected = (
            set(identity_owner) if user == security else visible_in_python(user, tool_owner, identity_owner, bound)
        )
        assert set(scope.values_list("pk", flat=True)) == expected
        assert scope.count() == len(expected)
        for name, queryset in derived(scope, user, env).items():
            assert queryset.count() == len(list(queryset)), name


def test_an_owners_untouched_scope_is_counted_from_the_id_union_and_anything_else_through_the_rows(world):
    owners, tools, identities, _security = world
    owner = owners[1]
    ServiceIdentity.objects.filter(pk__in=[identities[0].pk, identities[1].pk]).update(owner=owner)
    AITool.objects.filter(pk=tools[0].pk).update(owner=owner)
    ToolIdentity.objects.create(tool=tools[0], identity=identities[1])  # owned and behind an owned tool: once
    ToolIdentity.objects.create(tool=tools[0], identity=identities[2])

    def counted(queryset) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            n = queryset.count()
        assert len(captured.captured_queries) == 1
        return n, captured.captured_queries[0]["sql"]

    scope = selectors.identity_list(user=owner, credential_counts=False).order_by("name")
    n, sql = counted(scope)
    assert n == 3 and "UNION" in sql
    n, sql = counted(scope.order_by()[:2])
    assert n == 2 and "UNION" in sql
    n, sql = counted(scope.filter(environment="prod"))
    assert n == 3 and "UNION" not in sql
