"""Permission-scoped querysets: every read starts from `.visible_to(user)`, every write from `.editable_by(user)`.

Forgetting a check therefore shows nothing rather than everything. Scoping is SQL (joins and
subqueries), never Python lists of ids.
"""

from django.db import models
from django.db.models import Q
from django.db.models.sql.where import WhereNode

from nhi_portal import roles


class ToolQuerySet(models.QuerySet):
    def visible_to(self, user):
        if not roles.may_use_portal(user):
            return self.none()
        if roles.sees_everything(user):
            return self
        return self.filter(owner=user)

    def editable_by(self, user):
        if not roles.may_write(user):
            return self.none()
        if roles.is_security(user):
            return self
        return self.filter(owner=user)


def tool_visible_to(user, tool) -> bool:
    """The in-memory twin of `ToolQuerySet.visible_to` for one tool already read."""
    return roles.may_use_portal(user) and (roles.sees_everything(user) or tool.owner_id == user.pk)


def owner_may_edit(user, obj) -> bool:
    """The in-memory twin of `editable_by` for tools and identities: security, or a writer who owns it."""
    return roles.is_security(user) or (roles.may_write(user) and obj.owner_id == user.pk)


class IdentityQuerySet(models.QuerySet):
    """An owner's identities are an OR of two sets: those they own and those behind a tool they own.

    Rows are read through the OR, which suits a page: PostgreSQL walks the `name` index, tests each identity
    against the owner's bindings hashed once, and stops when the page is full (4 ms for the owner with the most
    tools among 100,000 identities). A COUNT(*) through it cannot stop early and tests every identity (25-35 ms). So
    `count()` on an owner's scope, as long as nothing chained on since `visible_to` changed which rows it holds (no
    filter, exclude, distinct, grouping, combination, extra table or join; ordering, select_related, prefetching,
    annotations without a join and slicing are fine), counts the UNION of the two id sets instead: two index scans
    and a hash, without visiting the other identities (4 ms). The count stays exact; any other queryset, including
    one filtered before `visible_to`, counts as Django would.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._visible_ids = None  # set by visible_to for an owner: (the ids of the scope, the scope's row-set key)

    def _clone(self):
        clone = super()._clone()
        clone._visible_ids = self._visible_ids
        return clone

    def visible_to(self, user):
        """Owners see identities they own and the ones behind tools they own."""
        if not roles.may_use_portal(user):
            return self.none()
        if roles.sees_everything(user):
            return self
        from .tools import ToolIdentity

        # Uncorrelated, so PostgreSQL hashes the owner's bindings once instead of probing them per identity.
        behind_own_tool = ToolIdentity.objects.filter(tool__owner=user).order_by().values("identity_id")
        scoped = self.filter(Q(owner=user) | Q(pk__in=behind_own_tool))
        if _whole_table(self.query):
            owned = self.model._default_manager.filter(owner=user).order_by().values("pk")
            scoped._visible_ids = (owned.union(behind_own_tool), _row_set_key(scoped.query))
        return scoped

    def count(self) -> int:
        if self._result_cache is None and self._visible_ids is not None:
            ids, key = self._visible_ids
            if _same_row_set(_row_set_key(self.query), key):
                total = ids.using(self.db).count()
                low, high = self.query.low_mark, self.query.high_mark
                return max(0, min(total, total if high is None else high) - low)
        return super().count()

    def editable_by(self, user):
        if not roles.may_write(user):
            return self.none()
        if roles.is_security(user):
            return self
        return self.filter(owner=user)


def _where_preorder(node):
    """The filter tree in pre-order: inner nodes as (connector, negated, number of children), conditions themselves.
    Cloning a queryset copies the inner nodes but shares the conditions."""
    if isinstance(node, WhereNode):
        yield (node.connector, node.negated, len(node.children))
        for child in node.children:
            yield from _where_preorder(child)
    else:
        yield node


def _row_set_key(query) -> tuple:
    """What decides which rows a query holds, slicing aside: its filters, joins and whatever merges, groups or
    combines rows."""
    return (
        tuple(_where_preorder(query.where)),
        tuple(query.alias_map),  # a filter's or an annotation's joins are set up when chained on, select_related's
        query.distinct,  # only when the query runs
        tuple(query.distinct_fields),
        query.combinator,
        query.group_by,
        tuple(query.extra_tables),
    )


def _whole_table(query) -> bool:
    """Nothing filters, joins, groups or combines the query (its own table is listed once something refers to it)."""
    _conditions, tables, *rest = _row_set_key(query)
    return not query.where and len(tables) <= 1 and rest == [False, (), None, None, ()]


def _same_row_set(key, other) -> bool:
    """Keys equal with the conditions compared by identity: the very conditions `visible_to` put there, none added,
    removed, replaced or relabelled. (A condition's own == compares its SQL parts, subqueries included.)"""
    (conditions, *rest), (other_conditions, *other_rest) = key, other
    return (
        rest == other_rest
        and len(conditions) == len(other_conditions)
        and all(
            a is b or (type(a) is tuple and type(b) is tuple and a == b)
            for a, b in zip(conditions, other_conditions, strict=True)
        )
    )


class _ByIdentityQuerySet(models.QuerySet):
    """Credentials and grants are visible and editable exactly as their identity is."""

    def visible_to(self, user):
        from .identities import ServiceIdentity

        if roles.sees_everything(user):
            return self if roles.may_use_portal(user) else self.none()
        return self.filter(identity__in=ServiceIdentity.objects.visible_to(user).values("pk"))

    def editable_by(self, user):
        from .identities import ServiceIdentity

        if roles.is_security(user):
            return self
        return self.filter(identity__in=ServiceIdentity.objects.editable_by(user).values("pk"))


class CredentialQuerySet(_ByIdentityQuerySet):
    pass


class GrantQuerySet(_ByIdentityQuerySet):
    def active(self, *, at=None):
        from django.utils import timezone

        at = at or timezone.now()
        return self.filter(status="active").filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
