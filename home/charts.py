"""Server-rendered charts: the numbers read in one query each, and the geometry the SVG templates draw.

No script and no colour-only meaning: every bar and point carries its number as text, the two series of a chart differ
by fill pattern as well as colour, and each chart has a data table beside it (templates/home/_partials/)."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, OuterRef, Subquery

from inventory.choices import ScopeRisk
from inventory.models import Scan, Scope, ScopeGrant

WIDTH, HEIGHT = 600, 180
LEFT, RIGHT, TOP, BOTTOM = 40, 16, 16, 28  # room for the axis labels


@dataclass
class Bar:
    label: str
    value: int
    x: float = 0
    y: float = 0
    width: float = 0
    height: float = 0
    text_x: float = 0  # where the bar's number is written
    text_y: float = 0


@dataclass
class WeekBars:
    """Findings opened and resolved in each of the last weeks (each week ends on the day shown)."""

    weeks: list[tuple[date, Bar, Bar]]
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - BOTTOM
    peak: int = 0
    ticks: list[tuple[float, int]] = field(default_factory=list)
    label_y: int = 0
    tick_x: int = 0
    right: int = 0

    @property
    def opened_total(self) -> int:
        return sum(opened.value for _, opened, _ in self.weeks)

    @property
    def resolved_total(self) -> int:
        return sum(resolved.value for _, _, resolved in self.weeks)


def findings_per_week(*, now: datetime, weeks: int = 8) -> WeekBars:
    """Findings each scan opened and resolved, summed per week: read from the scans' own per-detector counts, a few
    rows a week, where counting the findings themselves read every one of 650,000 rows on each visit."""
    starts = [now - timedelta(days=7 * (weeks - i)) for i in range(weeks)]
    opened, resolved = [0] * weeks, [0] * weeks
    scans = Scan.objects.filter(status=Scan.Status.DONE, finished_at__gt=starts[0]).values_list("finished_at", "counts")
    for finished, counts in scans:
        week = min(int((finished - starts[0]) / timedelta(days=7)), weeks - 1)
        for per_detector in (counts or {}).values():
            if isinstance(per_detector, dict):
                opened[week] += int(per_detector.get("opened") or 0)
                resolved[week] += int(per_detector.get("resolved") or 0)
    counts = {f"opened_{i}": opened[i] for i in range(weeks)} | {f"resolved_{i}": resolved[i] for i in range(weeks)}
    rows = [
        (
            (start + timedelta(days=7)).date(),
            Bar("opened", counts[f"opened_{i}"] or 0),
            Bar("resolved", counts[f"resolved_{i}"] or 0),
        )
        for i, start in enumerate(starts)
    ]
    chart = WeekBars(rows)
    chart.peak = max([1, *(b.value for _, o, r in rows for b in (o, r))])
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / weeks
    bar_width = slot * 0.36
    for i, (_, opened, resolved) in enumerate(rows):
        for j, bar in enumerate((opened, resolved)):
            bar.height = round(plot_height * bar.value / chart.peak, 1)
            bar.width = round(bar_width, 1)
            bar.x = round(LEFT + i * slot + slot * 0.12 + j * bar_width, 1)
            bar.y = round(chart.baseline - bar.height, 1)
            bar.text_x, bar.text_y = bar.x, round(bar.y - 3, 1)
    shares = (0, 0.5, 1) if chart.peak >= 2 else (0, 1)  # no "0, 0, 1" axis when at most one finding a week
    chart.ticks = [(round(chart.baseline - plot_height * share, 1), round(chart.peak * share)) for share in shares]
    chart.label_y, chart.tick_x, chart.right = HEIGHT - 8, LEFT - 6, WIDTH - RIGHT
    return chart


@dataclass
class RiskBars:
    bars: list[Bar]
    total: int
    width: int = WIDTH
    height: int = 0


def grants_by_risk() -> RiskBars:
    """Active grants by the risk of their scope, admin first: where the standing power sits."""
    # Counted per scope through the partial index of active grants (index only, no join per grant), then summed by
    # risk over the few hundred scopes: joining 224,000 active grants to their scope to group them took 100 ms.
    active = ScopeGrant.objects.filter(scope=OuterRef("pk"), status="active").order_by().values("scope")
    per_scope = (
        Scope.objects.order_by()
        .annotate(n=Subquery(active.annotate(n=Count("*")).values("n")))
        .values_list("risk", "n")
    )
    counts: dict[str, int] = {}
    for risk, n in per_scope:
        counts[risk] = counts.get(risk, 0) + (n or 0)
    order = [ScopeRisk.ADMIN, ScopeRisk.WRITE, ScopeRisk.READ]
    bars = [Bar(ScopeRisk(risk).label, counts.get(risk, 0)) for risk in order]
    peak = max([1, *(bar.value for bar in bars)])
    label_width, row = 90, 34
    for i, bar in enumerate(bars):
        bar.x, bar.y = label_width, 8 + i * row
        bar.height = 22
        bar.width = round((WIDTH - label_width - 90) * bar.value / peak, 1)
        bar.text_x, bar.text_y = round(bar.x + bar.width + 6, 1), bar.y + 16
    return RiskBars(bars, sum(bar.value for bar in bars), height=16 + row * len(bars))


@dataclass
class Trend:
    """A pass rate over time, as a polyline in a 0-100 % frame."""

    points: str
    last: tuple[date, float] | None
    first: tuple[date, float] | None
    dots: list[tuple[float, float]]
    width: int = WIDTH
    height: int = HEIGHT
    ticks: list[tuple[float, int]] = field(default_factory=list)
    left: int = LEFT
    right: int = WIDTH - RIGHT
    tick_x: int = LEFT - 6
    label_y: int = HEIGHT - 8

    @property
    def change(self) -> float | None:
        return round(self.last[1] - self.first[1], 1) if self.last and self.first else None


def trend(series: list[tuple[date, float]], *, days: int, today: date) -> Trend:
    """Place each (day, rate) on a time axis of `days` days ending `today`, so a gap in the history shows as a gap."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    start = today - timedelta(days=days)
    coords = [
        (round(LEFT + plot_width * (day - start).days / days, 1), round(TOP + plot_height * (100 - rate) / 100, 1))
        for day, rate in series
    ]
    result = Trend(
        points=" ".join(f"{x},{y}" for x, y in coords),
        last=series[-1] if series else None,
        first=series[0] if series else None,
        dots=[(x, y, round(x - 6, 1), round(max(y - 8, TOP + 4), 1)) for x, y in coords[-1:]],
    )
    result.ticks = [(round(TOP + plot_height * (100 - pct) / 100, 1), pct) for pct in (0, 50, 100)]
    return result
