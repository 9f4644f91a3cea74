"""Names for hand-written SQL, taken from the models so that a renamed table, column or choice follows automatically.

Every hand-written statement names what it reads through this module: tables and columns with `table` / `column` (or
a `Names` in an f-string), choice values and other code constants with `literal`. Caller input is always bound as a
parameter, never formatted in; datetimes are bound through `datetime_param`. The statements, and the plain-Python
reference each one is held to by a property test:

- API token lookup: `nhi_portal.authentication._lookup`, reference `nhi_portal.authentication_reference`;
- authorize: `approvals.authorization_store.decision_sql`, reference `approvals.authorization_reference`;
- posture snapshot: `inventory.posture.evaluate.snapshot`, reference `inventory.posture.evaluate_reference`;
- detection apply: `inventory.detection.apply.apply_subjects`, reference `inventory.detection.apply_reference`.

A plain lower-case name that no supported database reserves is written bare: the decision statement must stay under
psycopg's 4 KB parse cache (approvals.authorization_store), and quotes are two bytes a name. Anything else is quoted.
This module takes models as arguments: nhi_portal imports neither app.
"""

import re
from collections.abc import Iterable
from datetime import datetime

from django.db import connection

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")
_CONSTANT = re.compile(r"[a-z_]+")
# PostgreSQL's reserved and type-function words, and SQLite's keywords: any of these stays quoted.
_KEYWORDS = frozenset(
    """
    abort action add after all alter always analyse analyze and any array as asc asymmetric attach authorization
    autoincrement before begin between binary both by cascade case cast check collate collation column commit
    concurrently conflict constraint create cross current current_catalog current_date current_role current_schema
    current_time current_timestamp current_user database default deferrable deferred delete desc detach distinct do
    drop each else end escape except exclude exclusive exists explain fail false fetch filter first following for
    foreign freeze from full generated glob grant group groups having if ignore ilike immediate in index indexed
    initially inner insert instead intersect into is isnull join key last lateral leading left like limit localtime
    localtimestamp match materialized natural no not nothing notnull null nulls of offset on only or order others
    outer over overlaps partition placing plan pragma preceding primary query raise range recursive references
    regexp reindex release rename replace restrict returning right rollback row rows savepoint select session_user
    set similar some symmetric system_user table tablesample temp temporary then ties to trailing transaction trigger
    true unbounded union unique update user using vacuum values variadic verbose view virtual when where window with
    within without
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def name(identifier: str) -> str:
    if _PLAIN.fullmatch(identifier) and identifier not in _KEYWORDS:
        return identifier
    return connection.ops.quote_name(identifier)


def table(model) -> str:
    return name(model._meta.db_table)


def column(model, field: str) -> str:
    """A field's column; `pk` for the primary key."""
    meta = model._meta
    return name(meta.pk.column if field == "pk" else meta.get_field(field).column)


def datetime_param(value: datetime | None):
    """A datetime to bind, as the ORM would store it. SQLite compares datetimes as text, and a raw aware datetime
    binds as "... 12:00:00+00:00", which sorts after the ORM's "... 12:00:00": the very same moment would compare as
    later, and rows written with it would be stored in another form."""
    return connection.ops.adapt_datetimefield_value(value)


def literal(value: str | bool) -> str:
    """A code constant (a choice value such as a status, or a reason code, or a boolean) as an SQL literal. Only
    plain lower-case words qualify, so nothing needs escaping; caller input is never a constant: it is always bound."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if not _CONSTANT.fullmatch(value):
        raise ValueError(f"not a plain constant: {value!r}")
    return f"'{value}'"


def literals(values: Iterable[str]) -> str:
    """Constants for an `IN (...)` list."""
    return ", ".join(literal(value) for value in values)


class Names:
    """A model's names for an f-string: `{n}` is its table, `{n.field}` a field's column (`{n.pk}` the primary key).

        finding = Names(Finding)
        f"UPDATE {finding} SET {finding.status} = {literal(FindingStatus.RESOLVED)} WHERE {finding}.{finding.tool} ..."

    An unknown field raises when the statement is built (FieldDoesNotExist), not when it runs.
    """

    __slots__ = ("_model",)

    def __init__(self, model):
        self._model = model

    def __str__(self) -> str:
        return table(self._model)

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):
            raise AttributeError(field)
        return column(self._model, field)
