"""The response clock (issue 18): time to detect (the write that revealed an exposure → its finding opened), time to
alert (→ the first alert delivered) and time to contain (→ contained), median and p95 over the last 30 days.

Only findings a targeted run opened know when their exposure was observed; a finding a scan opened counts for time to
contain from its opening. One query over the findings opened in the window: PostgreSQL computes the percentiles itself;
SQLite, the embedded default, returns the durations and they are sorted here.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory.models import Finding

WINDOW = timedelta(days=30)


def duration_text(value: timedelta | None) -> str:
    """'42 s', '3 min 5 s', '2 h 10 min', '3 d 4 h': short enough for a table cell, exact enough for an auditor."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True)
class Measure:
    name: str
    count: int
    median: timedelta | None
    p95: timedelta | None

    @property
    def median_text(self) -> str:
        return duration_text(self.median)

    @property
    def p95_text(self) -> str:
        return duration_text(self.p95)


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

    # Only findings a measure applies to: observed (detect, alert) or contained. The rest are nearly every finding a
    # scan opened (656,000 at the scale data, 280 ms to rank); their durations are NULL, which the ranks skip anyway.
    # finding_response_idx holds exactly these rows.
    durations = (
        Finding.objects.filter(Q(observed_at__isnull=False) | Q(contained_at__isnull=False), opened_at__gte=since)
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
