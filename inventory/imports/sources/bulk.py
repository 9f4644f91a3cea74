"""Writing many rows of one model at once, as a source import does: COPY on PostgreSQL, the ORM elsewhere.

`insert` and `update` take plain values (no model instances: at 100,000 rows their construction and Django's SQL
building were most of an import's time and memory). On PostgreSQL rows stream to the server with COPY, the new
primary keys taken from the table's sequence beforehand (so the caller knows them, in increasing order, without
RETURNING), and an update is a COPY into a temporary table joined by `UPDATE ... FROM`. Elsewhere (SQLite, `make
run`) the same calls go through `bulk_create` / `bulk_update`: that path is the reference, and
tests/inventory/discovery/test_bulk_reference.py holds the two giving identical rows for generated values.

Values are what the model field holds in Python (aware datetimes, dicts for JSON); defaults and `auto_now` /
`auto_now_add` are filled as `Model(...).save()` fills them. Neither path sends signals, as `bulk_create` does not.
"""

import json
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from django.db import connection, models
from django.db.models import Lookup, QuerySet
from django.utils import timezone

from inventory.audit.record import ObjectChange
from inventory.models import AuditEntry, ServiceIdentity, SourceObject

BATCH = 1000
_CALL = object()  # a default computed per row (a callable: dict, list...)


def _columns(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    return [model._meta.get_field(name) for name in names]


def _inserted_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _default(field: models.Field, now) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


def _encoder(field: models.Field) -> json.JSONEncoder | None:
    """How COPY sends a JSON field: as its text, encoded as the ORM encodes it (the server parses it into jsonb).
    Other values go as psycopg adapts them; None is NULL, as the ORM stores a JSONField's None."""
    if isinstance(field, models.JSONField):
        return (field.encoder or json.JSONEncoder)()
    return None


def _copy_value(value: Any, encoder: json.JSONEncoder | None) -> Any:
    return encoder.encode(value) if encoder is not None and value is not None else value


def _use_copy() -> bool:
    return connection.vendor == "postgresql"


class AnyOf(Lookup):
    """`column = ANY(%s)` with the keys as one array parameter. An IN list of thousands of keys costs more to build,
    quote and parse (Django and psycopg, per key) than the index lookups it asks for; one array does not."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[str]:
        return [str(value) for value in self.rhs]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, self.rhs]


# Only the key columns an import looks up by, not every CharField in the project.
for _field in (SourceObject._meta.get_field("external_id"), ServiceIdentity._meta.get_field("name")):
    _field.register_lookup(AnyOf)


def keyed(queryset: QuerySet, field: str, keys: list[str]) -> QuerySet:
    """`queryset` narrowed to rows whose `field` is one of `keys`: an array parameter on PostgreSQL, IN elsewhere (the
    reference: test_bulk_reference holds the two equal)."""
    return queryset.filter(**{f"{field}__{'any_of' if _use_copy() else 'in'}": keys})


def insert(model: type[models.Model], rows: Iterable[dict[str, Any]], *, keys: bool = True) -> list[int]:
    """Insert one row per dict (attname to value: `owner_id`, not `owner`); returns the new primary keys in the order
    given (none with `keys=False`: the table's default numbers them, in the same order, one round trip fewer).
    Fields a row leaves out take their default; `auto_now` / `auto_now_add` fields take the time of the insert,
    written back into each row dict so the caller's audit entry says what was stored."""
    rows = list(rows)
    if not rows:
        return []
    fields = _inserted_fields(model)
    now = timezone.now()
    # Defaults that are not callables are the same for every row: computed once.
    fixed = {f.attname: _default(f, now) for f in fields if not callable(f.default)}
    automatic = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    if not _use_copy():
        objs = [model(**row) for row in rows]
        model.objects.bulk_create(objs, batch_size=BATCH)
        for row, obj in zip(rows, objs, strict=True):
            row.update((f.attname, getattr(obj, f.attname)) for f in automatic)
        return [obj.pk for obj in objs] if keys else []
    for row in rows:
        # As pre_save does on insert, whatever was given; the caller reads the values back from its rows.
        row.update((f.attname, now) for f in automatic)
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    with connection.cursor() as cursor:
        pks: list[int] = []
        if keys:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), pk_column, len(rows)],
            )
            pks = sorted(row[0] for row in cursor.fetchall())
        columns = [pk_column] if keys else []
        column_list = ", ".join(connection.ops.quote_name(c) for c in [*columns, *(f.column for f in fields)])
        # Each row's values in column order: the row laid over the defaults, read out by one itemgetter (loops in C,
        # not a Python step per field and row, which cost seconds at 100,000 users). Callable defaults (a dict per
        # row) are filled where the row left them out; JSON fields are encoded after. Positions are in the row sent,
        # which starts with the key when there is one.
        names = [f.attname for f in fields]
        base = {attname: fixed.get(attname, _CALL) for attname in names}
        pick = itemgetter(*names) if len(names) > 1 else (lambda merged: (merged[names[0]],))
        first = len(columns)
        calls = [(first + i, f) for i, f in enumerate(fields) if f.attname not in fixed]
        encoders = [(first + i, encoder) for i, f in enumerate(fields) if (encoder := _encoder(f)) is not None]
        with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({column_list}) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                values = [pks[n], *pick({**base, **row})] if keys else list(pick({**base, **row}))
                for i, f in calls:
                    if values[i] is _CALL:
                        values[i] = f.get_default()
                for i, encoder in encoders:
                    if values[i] is not None:
                        values[i] = encoder.encode(values[i])
                copy.write_row(values)
    return pks


def update(model: type[models.Model], rows: Iterable[dict[str, Any]], names: Sequence[str]) -> int:
    """Set the fields `names` of each row's object (`id` in the dict) to the row's values (by attname); returns the
    rows sent.

    As `bulk_update`, `auto_now` fields change only when named."""
    rows = list(rows)
    if not rows:
        return 0
    fields = _columns(model, names)
    pk_name = model._meta.pk.attname
    if not _use_copy():
        objs = []
        for row in rows:
            obj = model(**{pk_name: row["id"]})
            for f in fields:
                setattr(obj, f.attname, row[f.attname])
            objs.append(obj)
        model.objects.bulk_update(objs, [f.name for f in fields], batch_size=BATCH)
        return len(rows)
    quote = connection.ops.quote_name
    table, staging = quote(model._meta.db_table), quote(f"_sync_{model._meta.db_table}")
    pk_column = quote(model._meta.pk.column)
    columns = [quote(f.column) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{staging}")
        # Same column types as the table, no rows; gone at the end of the transaction whatever happens.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
            f"SELECT {pk_column}, {', '.join(columns)} FROM {table} WITH NO DATA"
        )
        encoders = [(f.attname, _encoder(f)) for f in fields]
        with cursor.cursor.copy(f"COPY {staging} ({pk_column}, {', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row["id"], *(_copy_value(row[attname], encoder) for attname, encoder in encoders)])
        assignments = ", ".join(f"{column} = s.{column}" for column in columns)
        cursor.execute(f"UPDATE {table} AS t SET {assignments} FROM {staging} AS s WHERE t.{pk_column} = s.{pk_column}")
        cursor.execute(f"DROP TABLE pg_temp.{staging}")
    return len(rows)


def audit(*, actor, changes: Iterable[ObjectChange], comment: str = "") -> int:
    """The entries `inventory.audit.record.audit_changes` writes for the same changes, row for row (the reference test
    holds them identical, so sealing covers them the same), sent with `insert`; returns the count."""
    label = actor.get_username()
    rows = [
        {
            "actor_id": actor.pk,
            "actor_label": label,
            "action": change.action,
            "object_type": change.object_type,
            "object_id": str(change.object_id),
            "object_repr": change.label[:255],
            "before": change.before,
            "after": change.after,
            "comment": comment,
        }
        for change in changes
    ]
    insert(AuditEntry, rows, keys=False)
    return len(rows)


def refresh_statistics(*model_list: type[models.Model], quick: bool = False) -> None:
    """ANALYZE the tables during and after a bulk load, as PostgreSQL advises ("Populating a Database"): until
    autovacuum gets to them the planner believes them as small as they were, and key lookups (this import's next
    chunks, the next import) scan them whole instead of using their indexes. Run inside the import's transaction, it
    counts the rows that transaction wrote. `quick` (during the load) samples a tenth as many rows: the row count is
    what the lookups' plans need; the final refresh keeps the usual detail for every other query."""
    if not _use_copy():
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if quick:
            cursor.execute("SET LOCAL default_statistics_target = 10")
        cursor.execute("ANALYZE " + ", ".join(quote(model._meta.db_table) for model in model_list))
        if quick:
            cursor.execute("RESET default_statistics_target")
