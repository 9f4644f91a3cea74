"""Reading "the first few and how many there are" in one query, for every to-do list on the home pages."""

from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, Q, QuerySet, Subquery, Window

from inventory.models.findings import SEVERITY_RANK  # noqa: F401  (re-exported for the home pages)


def first_and_total(queryset: QuerySet, limit: int, **counts: Q) -> tuple[list, dict[str, int]]:
    """The first `limit` rows and, from the same statement, the total and each named filtered count. The counts are
    window aggregates, computed over every matching row before the LIMIT: one round trip where a list and its
    counts would otherwise take one each."""
    windows = {"_total": Window(Count("pk"))}
    windows |= {f"_{name}": Window(Count("pk", filter=condition)) for name, condition in counts.items()}
    rows = list(queryset.annotate(**windows)[:limit])
    totals = {name: getattr(rows[0], f"_{name}") if rows else 0 for name in ["total", *counts]}
    return rows, totals


class CappedCount(Subquery):
    """How many rows a queryset holds, counting no further than `cap + 1`: the page says "1,000+" beyond the cap.
    A scalar subquery, so several counts are read in one statement (`read_scalars`)."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS capped)"

    def __init__(self, queryset: QuerySet, cap: int):
        super().__init__(queryset.order_by()[: cap + 1], output_field=IntegerField())


def read_scalars(*, user, **expressions) -> dict:
    """Several scalar subqueries (counts) in one statement. They hang off the signed-in user's own row only because
    a statement needs a row to return (as home.jobs does): it always exists, and none of its columns is read."""
    row = get_user_model().objects.filter(pk=user.pk).annotate(**expressions).values(*expressions).first()
    return row or dict.fromkeys(expressions, 0)
