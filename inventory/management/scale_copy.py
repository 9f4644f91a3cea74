"""Writing the benchmark estate fast: COPY on PostgreSQL (psycopg 3) with secondary indexes built after the load,
batched bulk_create elsewhere; and the tables a reset must clear."""

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice

from django.apps import apps
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Model

from inventory.management.scale_estate import SEEDED_MODELS, _datetime


def seeded_and_dependent_models() -> list[type[Model]]:
    """The tables this command fills and every table that points into them, however indirectly.

    --reset must clear access requests, findings, access events and the like with the tools they name;
    reference data that only points outward (frameworks and controls, users, groups) is left alone.
    """
    doomed: set[type[Model]] = set(SEEDED_MODELS)
    candidates = [model for model in apps.get_models(include_auto_created=True) if model._meta.managed]
    grew = True
    while grew:
        grew = False
        for model in candidates:
            targets = {field.related_model for field in model._meta.concrete_fields if field.is_relation}
            if model not in doomed and targets & doomed:
                doomed.add(model)
                grew = True
    return sorted(doomed, key=lambda model: model._meta.db_table)


def _columns(model: type[Model], fields: Sequence[str]) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), ", ".join(quote(model._meta.get_field(name).column) for name in fields)


def _with_defaults(model: type[Model], fields: Sequence[str], rows: Iterable[tuple]) -> tuple[tuple, Iterable[tuple]]:
    """Columns added to a model after this command was written get their default, so COPY keeps working.

    (bulk_create fills defaults by itself; COPY leaves a missing NOT NULL column to fail.)
    """
    missing = [field for field in model._meta.concrete_fields if field.attname not in fields]
    if not missing:
        return tuple(fields), rows
    extra = []
    for field in missing:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = _datetime(time.time())
        elif field.has_default() or field.null or field.empty_strings_allowed:
            value = field.get_default()  # what bulk_create would store: the default, None or ""
        else:
            raise CommandError(f"seed_scale does not know what to put in {model.__name__}.{field.name}; teach Estate.")
        extra.append(field.get_db_prep_save(value, connection))
    return (*fields, *(field.attname for field in missing)), (row + tuple(extra) for row in rows)


def copy_rows(model: type[Model], fields: Sequence[str], rows: Iterable[tuple]) -> int:
    """Stream rows into the table with binary COPY FROM STDIN: no statement per row, no text parsing.

    Binary, because the server parsing timestamps out of text costs more than everything else together.
    Binary COPY needs each column's exact type; the table itself says what they are.
    """
    fields, rows = _with_defaults(model, fields, rows)
    table, columns = _columns(model, fields)
    written = 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} LIMIT 0")
        types = [column.type_code for column in cursor.description]
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
                written += 1
    return written


# Secondary indexes, unique and foreign-key constraints of a table, with the DDL that recreates each one as it was.
# Primary keys stay: ids arrive in order, so keeping them is cheap, and other tables' foreign keys need them.
_SECONDARY_DDL = """
    SELECT 'constraint', conname, pg_get_constraintdef(oid), contype = 'f'
    FROM pg_constraint WHERE conrelid = %(table)s::regclass AND contype IN ('u', 'f')
    UNION ALL
    SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), false
    FROM pg_index i
    WHERE i.indrelid = %(table)s::regclass AND NOT i.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
"""


@contextmanager
def secondary_indexes_deferred(models: Sequence[type[Model]]) -> Iterator[None]:
    """Drop secondary indexes and unique/foreign-key constraints, load, then rebuild them exactly as they were.

    What pg_restore does: one sorted index build beats a million random B-tree inserts (the fingerprint
    indexes alone outgrow shared_buffers), and one validating join per foreign key beats a million deferred
    trigger checks at commit. Runs inside the caller's transaction, so a failed load leaves the schema as it was.
    """
    quote = connection.ops.quote_name
    restore: list[tuple[bool, str]] = []
    with connection.cursor() as cursor:
        for model in models:
            table = quote(model._meta.db_table)
            cursor.execute(_SECONDARY_DDL, {"table": table})
            for what, name, definition, foreign in cursor.fetchall():
                if what == "constraint":
                    cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
                    restore.append((foreign, f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}"))
                else:
                    cursor.execute(f"DROP INDEX {name}")
                    restore.append((False, definition))
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Indexes and unique constraints first, so that the foreign-key checks run against finished tables.
        for _foreign, sql in sorted(restore, key=lambda item: item[0]):
            cursor.execute(sql)


def bulk_create_rows(model: type[Model], fields: Sequence[str], rows: Iterable[tuple], batch_size: int = 5000) -> int:
    """The portable path. auto_now fields get "now" here: bulk_create fills them in, COPY does not."""
    rows, written = iter(rows), 0
    while batch := list(islice(rows, batch_size)):
        model._default_manager.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in batch])
        written += len(batch)
    return written
