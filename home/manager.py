"""A manager's home: pass rate and its trend per framework, the controls failing most, teams ranked.

Reads the daily posture snapshots (inventory.posture writes them), so the page costs the same at any estate size."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Sum
from django.utils import timezone

from inventory.models import ControlSnapshot, Framework, FrameworkSnapshot, PostureSnapshot

from .charts import Trend, findings_per_week, grants_by_risk, trend

TREND_DAYS = 90
# Teams are ranked on the framework the compliance pages open on.
RANKING_FRAMEWORK = "OWASP-NHI-2025"


@dataclass
class FrameworkRow:
    framework: Framework
    latest: FrameworkSnapshot | None
    trend: Trend

    @property
    def pass_rate(self) -> float | None:
        return self.latest.pass_rate if self.latest else None


def framework_rows(*, today: date) -> list[FrameworkRow]:
    """Every framework with its latest coverage and its pass rate over the last TREND_DAYS days. Two queries."""
    history = defaultdict(list)
    for snap in FrameworkSnapshot.objects.filter(day__gte=today - timedelta(days=TREND_DAYS)).order_by("day"):
        history[snap.framework_id].append(snap)
    rows = []
    for framework in Framework.objects.order_by("key"):
        snaps = history.get(framework.pk, [])
        series = [(s.day, s.pass_rate) for s in snaps if s.pass_rate is not None]
        rows.append(FrameworkRow(framework, snaps[-1] if snaps else None, trend(series, days=TREND_DAYS, today=today)))
    return rows


def controls_failing_most(*, day: date | None, limit: int = 8) -> list[ControlSnapshot]:
    if day is None:
        return []
    return list(
        ControlSnapshot.objects.filter(day=day, tools_failing__gt=0)
        .select_related("control__framework")
        .order_by("-tools_failing", "control__framework__key", "control__order")[:limit]
    )


def teams_ranked(*, day: date | None, framework: Framework | None) -> list[dict]:
    """Teams by their pass rate on one framework, lowest first: where a manager's attention does the most good."""
    if day is None or framework is None:
        return []
    groups = (
        PostureSnapshot.objects.filter(day=day, framework=framework)
        .order_by()
        .values("tool__team__name", "tool__team__slug")
        .annotate(assessed=Sum("assessed"), failing=Sum("failing"), tools=Count("pk"))
    )
    teams = []
    for group in groups:
        assessed, failing = group["assessed"] or 0, group["failing"] or 0
        rate = round(100 * (assessed - failing) / assessed, 1) if assessed else None
        teams.append({**group, "pass_rate": rate})
    return sorted(teams, key=lambda t: (t["pass_rate"] is None, t["pass_rate"] or 0, t["tool__team__name"] or ""))


def manager_home(*, now: datetime) -> dict:
    today = timezone.localdate(now)
    rows = framework_rows(today=today)
    latest_day = max((row.latest.day for row in rows if row.latest), default=None)
    ranking = next((row.framework for row in rows if row.framework.key == RANKING_FRAMEWORK), None)
    ranking = ranking or (rows[0].framework if rows else None)
    return {
        "now": now,
        "frameworks": rows,
        "day": latest_day,
        "trend_days": TREND_DAYS,
        "controls": controls_failing_most(day=latest_day),
        "ranking_framework": ranking,
        "teams": teams_ranked(day=latest_day, framework=ranking),
        "findings_chart": findings_per_week(now=now),
        "grants_chart": grants_by_risk(),
    }
