"""Keyset pagination for the audit pages, which grow by millions of rows a day.

A page is the rows before (older) or after (newer) an id, newest first, read through an index on (filter column, id)
or the primary key, so page 10,000 costs what page 1 costs; OFFSET would read every row before it. There is no exact
count: an unfiltered list says "about N" from the planner's row estimate (pg_class.reltuples), a filtered one counts
up to COUNT_CAP rows through the same index ("10,000+" beyond). A time range becomes an id range (`id_at`): ids and the
time the portal recorded a row rise together, so a binary search over the primary key finds the bounds in one
statement, and every (column, id) index then serves the range as well; no index on the time is written.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import BigIntegerField, ExpressionWrapper, F, QuerySet

from inventory.audit.record import GRACE
from nhi_portal.sql import column, datetime_param, table

COUNT_CAP = 10_000
# Below this many matches (counted exactly), a filtered page is read by combining indexes rather than in id order.
FEW = 2_000


@dataclass
class KeysetPage:
    rows: list
    newer: int | None  # ?after= this id shows the newer rows; None when these are the newest
    older: int | None  # ?before= this id shows the older rows; None when these are the oldest
    about: int
    capped: bool  # more than COUNT_CAP match
    estimated: bool  # `about` is the planner's estimate of the whole table

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _id_param(request, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def keyset_page(request, queryset: QuerySet, *, per_page: int, filtered: bool) -> KeysetPage:
    """The page `?before=ID` / `?after=ID` asks for (the newest without either) of a queryset, newest first.
    Two or three queries: the count (an estimate, or a capped count) and the rows."""
    before, after = _id_param(request, "before"), _id_param(request, "after")
    about, capped, estimated = approximate_count(queryset, filtered=filtered)
    # Few matches of a filter (or of two combined): walking an index in id order would read on through every row of
    # the other filter's column looking for them, so let the planner combine the indexes and sort what they give
    # (an id + 0 order is one no index answers). Many matches: the ordered walk finds a page within a few pages.
    newest_first, oldest_first = F("pk").desc(), F("pk").asc()
    if filtered and not estimated and about < FEW:
        by_id = ExpressionWrapper(F("pk") + 0, output_field=BigIntegerField())
        newest_first, oldest_first = by_id.desc(), by_id.asc()
    if after is not None and before is None:
        rows = list(queryset.filter(pk__gt=after).order_by(oldest_first)[: per_page + 1])
        more_newer = len(rows) > per_page
        rows = rows[:per_page][::-1]
        newer = rows[0].pk if rows and more_newer else None
        older = rows[-1].pk if rows else after + 1
    else:
        if before is not None:
            queryset = queryset.filter(pk__lt=before)
        rows = list(queryset.order_by(newest_first)[: per_page + 1])
        more_older = len(rows) > per_page
        rows = rows[:per_page]
        older = rows[-1].pk if rows and more_older else None
        newer = rows[0].pk if rows and before is not None else (before - 1 if before is not None else None)
    return KeysetPage(rows, newer, older, about, capped, estimated)


def approximate_count(queryset: QuerySet, *, filtered: bool) -> tuple[int, bool, bool]:
    """(count, capped, estimated). On PostgreSQL, the planner's estimate when it is past COUNT_CAP (pg_class.reltuples
    for the whole table, EXPLAIN for a filter): counting ten thousand rows of a filter no index serves would read a
    large part of the table. Otherwise a count capped at COUNT_CAP."""
    if queryset.query.is_empty():
        return 0, False, False
    if connection.vendor == "postgresql":
        estimate = _table_estimate(queryset.model) if not filtered else _plan_estimate(queryset)
        if estimate >= COUNT_CAP:
            return estimate, False, True
    count = queryset.order_by()[: COUNT_CAP + 1].count()
    return min(count, COUNT_CAP), count > COUNT_CAP, False


def _table_estimate(model) -> int:
    # A partitioned table (the access events, inventory/audit/partitions.py) has no rows of its own: its partitions'
    # estimates add up (-1 is "never analysed").
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(GREATEST(reltuples, 0)), 0)::bigint FROM pg_class WHERE oid = %(t)s::regclass "
            "OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %(t)s::regclass)",
            {"t": model._meta.db_table},
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _plan_estimate(queryset: QuerySet) -> int:
    plan = json.loads(queryset.order_by().values("pk").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def id_at(model, time_field: str, at: datetime) -> int:
    """The smallest id whose `time_field` is at or after `at` (one past the largest id when none is), assuming ids and
    that time rise together, as they do for a server-side time: one statement, about log2(rows) primary-key probes."""
    t, pk, when = table(model), column(model, "id"), column(model, time_field)
    probe = f"SELECT {pk} FROM {t} WHERE {pk} >= (s.lo + s.hi) / 2 AND {pk} < s.hi ORDER BY {pk} LIMIT 1"
    probe_time = f"SELECT {when} FROM {t} WHERE {pk} = ({probe})"
    sql = f"""
        WITH RECURSIVE s(lo, hi, ans) AS (
            SELECT COALESCE((SELECT MIN({pk}) FROM {t}), 0), COALESCE((SELECT MAX({pk}) FROM {t}), 0) + 1,
                   COALESCE((SELECT MAX({pk}) FROM {t}), 0) + 1
            UNION ALL
            SELECT CASE WHEN ({probe}) IS NULL THEN s.lo WHEN ({probe_time}) < %(at)s THEN ({probe}) + 1 ELSE s.lo END,
                   CASE WHEN ({probe}) IS NULL THEN (s.lo + s.hi) / 2
                        WHEN ({probe_time}) < %(at)s THEN s.hi ELSE (s.lo + s.hi) / 2 END,
                   CASE WHEN ({probe}) IS NOT NULL AND ({probe_time}) >= %(at)s THEN ({probe}) ELSE s.ans END
            FROM s WHERE s.lo < s.hi
        )
        SELECT MIN(ans) FROM s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"at": datetime_param(at)})
        return int(cursor.fetchone()[0])


def recorded_range(queryset: QuerySet, time_field: str, since: datetime | None, until: datetime | None) -> QuerySet:
    """Rows recorded in [since, until): the id range from `id_at`, widened by the grace period within which commits may
    land out of order, then the exact time condition, which the id range keeps cheap."""
    model = queryset.model
    if since is not None:
        queryset = queryset.filter(pk__gte=id_at(model, time_field, since - GRACE), **{f"{time_field}__gte": since})
    if until is not None:
        queryset = queryset.filter(pk__lt=id_at(model, time_field, until + GRACE), **{f"{time_field}__lt": until})
    return queryset
