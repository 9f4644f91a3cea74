"""Names for hand-written SQL, taken from the models so that a renamed table or column follows automatically.

A plain lower-case name that no supported database reserves is written bare: the decision statement must stay under
psycopg's 4 KB parse cache (approvals.authorization_store), and quotes are two bytes a name. Anything else is quoted.
"""

import re

from django.db import connection

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")
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
