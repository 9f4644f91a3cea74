"""Names for hand-written SQL, taken from the models so that a renamed table or column follows automatically."""

from django.db import connection


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def column(model, field: str) -> str:
    """A field's quoted column; `pk` for the primary key."""
    meta = model._meta
    return connection.ops.quote_name(meta.pk.column if field == "pk" else meta.get_field(field).column)
