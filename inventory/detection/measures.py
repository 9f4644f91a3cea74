"""The response clock (issue 18): time to detect (the write that revealed an exposure → its finding opened), time to
alert (→ the first alert delivered) and time to contain (→ contained), median and p95 over the last 30 days.

Only findings a targeted run opened know when their exposure was observed; a finding a scan opened counts for time to
contain from its opening. One query over the findings opened in the window: PostgreSQL computes the percentiles itself;
SQLite, the embedded default, returns the durations and they are sorted here.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory.models import Finding

WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Measure:
    name: str
    count: int
    median: timedelta | None
    p95: timedelta | None


def _ranked(values: list[timedelta]) -> tuple[int, timedelta | None, timedelta | None]:
    values = sorted(v for v in values if v is not None)
    if not values:
        return 0, None, None

    def at(share: float) -> timedelta:
        # Linear interpolation between closest ranks, as PostgreSQL's percentile_cont does.
        rank = share * (len(values) - 1)
        low = int(rank)
        high = min(low + 1, len(values) - 1)
        return values[low] + (values[high] - values[low]) * (rank - low)

    return len(values), at(0.5), at(0.95)


NAMES = ("Time to detect", "Time to alert", "Time to contain")


def response_measures(*, now=None) -> list[Measure]:
    """The three measures in one query: PostgreSQL ranks them itself (percentile_cont skips the NULL durations of
    findings a measure does not apply to); SQLite returns the durations and they are ranked here."""
    since = (now or timezone.now()) - WINDOW

    def duration(end, start):
        return ExpressionWrapper(F(end) - start, output_field=DurationField())

    durations = (
        Finding.objects.filter(opened_at__gte=since)
        .order_by()
        .values_list(
            duration("opened_at", F("observed_at")),
            duration("alerted_at", F("observed_at")),
            duration("contained_at", Coalesce("observed_at", "opened_at")),
        )
    )
    if connection.vendor == "postgresql":
        sql, params = durations.query.sql_with_params()
        ranks = ", ".join(
            f"COUNT(d{n}), percentile_cont(0.5) WITHIN GROUP (ORDER BY d{n}), "
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY d{n})"
            for n in range(3)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {ranks} FROM ({sql}) AS m (d0, d1, d2)", params)
            row = cursor.fetchone()
        return [Measure(name, *row[3 * n : 3 * n + 3]) for n, name in enumerate(NAMES)]
    rows = list(durations)
    return [Measure(name, *_ranked([row[n] for row in rows])) for n, name in enumerate(NAMES)]
