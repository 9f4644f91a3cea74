"""The auditor's report (issue 15): what a manager prints and signs, read in a fixed number of queries whatever the
number of tools, findings or controls.

- a summary per framework: the pass rate over the results with evidence, with the coverage beside it (from the day's
  `FrameworkSnapshot`, the rule of `inventory.posture.evaluate.snapshot`);
- the catalog versions loaded, each cited by its publication (`Framework.source`);
- incident response: time to detect, alert and contain (median, p95, last 30 days; the response clock of
  `inventory.detection.measures`, the same the findings page shows) as evidence beside the controls the
  `exposure_uncontained` detector is primary for (CSF RS.MA-01 / RS.MI-01, SP 800-53 IR-4, ISO A.5.26);
- per framework, a tool x control matrix over the assessed controls, from `evaluate.control_ranks`, the one function
  every page, export and the API read statuses from (one statement for every framework at once);
- attestations (who attested what, when, until when) and exceptions (suppressed findings with their reason, end date,
  and who suppressed them when, from the audit trail);
- a sign-off block (in the template).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import CharField, Count, OuterRef, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from inventory import selectors
from inventory.detection import registry
from inventory.detection.measures import WINDOW, Measure, duration_text, response_measures
from inventory.models import (
    AITool,
    Attestation,
    AuditEntry,
    Control,
    ControlSnapshot,
    Finding,
    FindingStatus,
    Framework,
    FrameworkSnapshot,
    ToolIdentity,
)
from inventory.posture import evaluate as posture
from inventory.posture.evidence import evidence_map
from inventory.posture.titles import framework_title

# The matrix prints the tools with the most failing controls first, up to this many per framework; the complete
# matrix is the CSV export. Ten thousand rows per framework would be a book, not a report.
MATRIX_TOOLS = 60
# Exceptions and attestations are listed in full up to this many, the count always.
LISTED = 500
# The detector whose controls the response times are evidence for.
RESPONSE_DETECTOR = "exposure_uncontained"

# Matrix cells: a symbol that prints in black and white, and the word for screen readers and the legend.
CELLS = {
    posture.FAIL_RANK: ("✗", "fail", "fail"),
    posture.PASS_RANK: ("✓", "pass", "pass"),
    posture.NOT_SCANNED: ("?", "not scanned since the tool changed", "not_assessed"),
    posture.NO_SUBJECTS: ("\u2013", "nothing to examine", "not_assessed"),  # an en dash
}
# A pass that rests on a suppressed finding of a primary detector: posture counts it as a pass (security accepted the
# exception), and the report must not let it read as a clean one.
EXCEPTED = "excepted"
CELLS[EXCEPTED] = ("E", "pass by exception: a finding is suppressed (see Exceptions)", "exception")


@dataclass
class MatrixRow:
    tool: AITool
    cells: list[tuple[str, str, str]]  # (symbol, words, css status) per column
    failing: int


@dataclass
class Section:
    framework: Framework
    title: str
    day: object
    coverage: FrameworkSnapshot | None
    columns: list[Control] = field(default_factory=list)  # the assessed controls, in catalog order
    rows: list[MatrixRow] = field(default_factory=list)
    tools_total: int = 0
    tools_failing: int = 0
    worst: list[ControlSnapshot] = field(default_factory=list)
    families: list[dict] = field(default_factory=list)
    response_controls: list[Control] = field(default_factory=list)
    # The matrix's own counts, evaluated now (the summary above it is the day's snapshot): (tool, control) results.
    passing: int = 0
    excepted: int = 0  # of the passing, those resting on a suppressed finding
    failing: int = 0
    unassessed: int = 0
    controls_total: int = 0

    @property
    def rate(self) -> float | None:
        judged = self.passing + self.failing
        return round(100 * self.passing / judged, 1) if judged else None


def _latest_coverage() -> dict[int, FrameworkSnapshot]:
    """framework id -> its latest FrameworkSnapshot, in one query (DISTINCT ON would be PostgreSQL only)."""
    newest = FrameworkSnapshot.objects.filter(framework=OuterRef("framework")).order_by("-day").values("pk")[:1]
    rows = FrameworkSnapshot.objects.filter(pk=Subquery(newest))
    return {row.framework_id: row for row in rows}


def _matrix(sections: dict[int, Section], user, evidence) -> None:
    """Fill each section's columns and rows from one evaluation of the rule over every framework."""
    ranks = posture.control_ranks(evidence=evidence)  # one statement, every live tool and assessed control
    assessed_refs = set(evidence.primary)
    columns: dict[int, list[Control]] = defaultdict(list)
    live = Control.objects.filter(framework_id__in=list(sections), retired_at__isnull=True).order_by("order")
    for control in live.filter(control_id__in={ref.split(":", 1)[1] for ref in assessed_refs}).only(
        "framework_id", "control_id", "title", "order", "legacy_ids"
    ):
        section = sections[control.framework_id]
        control.framework = section.framework
        if control.ref in assessed_refs:
            columns[control.framework_id].append(control)
    visible = set(AITool.objects.visible_to(user).exclude(status="retired").values_list("pk", flat=True))
    by_framework: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    control_framework = {c.pk: fid for fid, cols in columns.items() for c in cols}
    for (tool_id, control_id), rank in ranks.items():
        framework_id = control_framework.get(control_id)
        if framework_id is not None and tool_id in visible:
            by_framework[framework_id][tool_id].append((control_id, rank))
    excepted = _excepted_pairs(evidence, control_framework.keys(), columns)
    chosen: dict[int, list[tuple[int, int]]] = {}
    for framework_id, section in sections.items():
        section.columns = columns.get(framework_id, [])
        per_tool = by_framework.get(framework_id, {})
        failing = {t: sum(r == posture.FAIL_RANK for _, r in cells) for t, cells in per_tool.items()}
        section.tools_total = len(per_tool)
        section.tools_failing = sum(1 for n in failing.values() if n)
        results = [rank for cells in per_tool.values() for _, rank in cells]
        section.failing = sum(rank == posture.FAIL_RANK for rank in results)
        section.passing = sum(rank == posture.PASS_RANK for rank in results)
        section.excepted = sum(
            rank == posture.PASS_RANK and (tool_id, control_id) in excepted
            for tool_id, cells in per_tool.items()
            for control_id, rank in cells
        )
        section.unassessed = len(results) - section.failing - section.passing
        chosen[framework_id] = sorted(failing.items(), key=lambda item: (-item[1], item[0]))[:MATRIX_TOOLS]
    wanted = {tool_id for rows in chosen.values() for tool_id, _ in rows}
    tools = AITool.objects.filter(pk__in=wanted).select_related("team").only("name", "slug", "team__name")
    tools = {tool.pk: tool for tool in tools}
    for framework_id, section in sections.items():
        per_tool = by_framework.get(framework_id, {})
        rows = []
        for tool_id, failing in chosen[framework_id]:
            rank_of = dict(per_tool[tool_id])
            cells = [
                CELLS[EXCEPTED if rank == posture.PASS_RANK and (tool_id, c.pk) in excepted else rank]
                for c in section.columns
                for rank in (rank_of.get(c.pk, posture.NOT_SCANNED),)
            ]
            rows.append(MatrixRow(tools[tool_id], cells, failing))
        # Failing tools first, then by name: the rows an auditor asks about lead.
        section.rows = sorted(rows, key=lambda row: (-row.failing, row.tool.name.casefold()))


def _excepted_pairs(evidence, control_ids, columns) -> set[tuple[int, int]]:
    """(tool id, control id) pairs where a primary detector's finding on the tool, or on an identity bound to it, is
    suppressed: the same reach posture gives findings. Suppressed findings are few; two queries."""
    refs = {c.ref: c.pk for cols in columns.values() for c in cols if c.pk in control_ids}
    controls_of: dict[str, list[int]] = defaultdict(list)
    for ref, pk in refs.items():
        for detector in evidence.primary.get(ref, ()):
            controls_of[detector].append(pk)
    suppressed = list(
        Finding.objects.filter(status=FindingStatus.SUPPRESSED, detector__in=list(controls_of))
        .order_by()
        .values_list("tool_id", "identity_id", "detector")
    )
    bound: dict[int, list[int]] = defaultdict(list)
    identities = {identity for _, identity, _ in suppressed if identity is not None}
    for tool_id, identity_id in ToolIdentity.objects.filter(identity_id__in=identities).values_list(
        "tool_id", "identity_id"
    ):
        bound[identity_id].append(tool_id)
    pairs = set()
    for tool_id, identity_id, detector in suppressed:
        tools = {tool_id} if tool_id is not None else set()
        tools.update(bound.get(identity_id, ()))
        pairs.update((t, c) for t in tools for c in controls_of[detector])
    return pairs


def _families_by_framework(sections, days, only_assessed, families_of) -> None:
    for framework_id, section in sections.items():
        families = families_of(section.framework, days.get(framework_id), expand="*") if section.day else []
        if only_assessed:
            families = [{**family, "others": []} for family in families if family["assessed"]]
        section.families = families


def _worst(sections: dict[int, Section]) -> None:
    """The five controls failing most per framework, from each framework's latest control snapshot: one query."""
    days = [section.day for section in sections.values() if section.day]
    if not days:
        return
    rows = (
        ControlSnapshot.objects.filter(day__in=set(days), tools_failing__gt=0, control__framework_id__in=list(sections))
        .select_related("control")
        .order_by("-tools_failing", "control__order")
    )
    for row in rows:
        section = sections[row.control.framework_id]
        if row.day == section.day and len(section.worst) < 5:
            row.control.framework = section.framework
            section.worst.append(row)


def attestations(user) -> tuple[list[Attestation], int]:
    """Attestations in force for the tools the reader sees, newest first: who attested which control, when, why."""
    live = Attestation.objects.filter(
        expires_at__gt=timezone.now(), tool__in=AITool.objects.visible_to(user), control__retired_at__isnull=True
    )
    rows = list(
        live.select_related("tool", "control__framework", "attested_by").order_by("-attested_at", "-pk")[:LISTED]
    )
    for row in rows:
        row.control.framework.title = framework_title(row.control.framework)
    return rows, (len(rows) if len(rows) < LISTED else live.count())


def exceptions(user) -> tuple[list[Finding], int]:
    """Suppressed findings the reader may see, the soonest to show again first: the reason, the end date, and who
    suppressed them when (the latest `finding.suppressed` entry of the audit trail, read in the same query)."""
    suppressed = Finding.objects.visible_to(user).filter(status=FindingStatus.SUPPRESSED)
    entry = AuditEntry.objects.filter(
        object_type="inventory.finding",
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
        action="finding.suppressed",
    ).order_by("-pk")
    rows = (
        selectors.with_subject_columns(suppressed)
        .select_related("tool", "identity")
        .annotate(
            suppressed_by=Subquery(entry.values("actor_label")[:1]),
            suppressed_at=Subquery(entry.values("created_at")[:1]),
        )
        .order_by("suppressed_until", "pk")[:LISTED]
    )
    rows = selectors.with_subject_names(selectors.with_titles(rows))
    return rows, (len(rows) if len(rows) < LISTED else suppressed.count())


@dataclass
class Response:
    measures: list[tuple[Measure, str, str]]  # (measure, median text, p95 text)
    controls: list[tuple[Control, ControlSnapshot | None]]
    window_days: int
    contain_within: str  # exposure_uncontained's threshold, as the controls are decided by it


def response_evidence(sections: dict[int, Section]) -> Response:
    """The response clock and the incident-response controls it is evidence for, with their latest results."""
    try:
        refs = set(registry.get(RESPONSE_DETECTOR).controls)
    except KeyError:
        refs = set()
    measures = [(m, duration_text(m.median), duration_text(m.p95)) for m in response_measures()]
    found = Control.objects.filter(
        framework_id__in=list(sections), control_id__in={ref.split(":", 1)[1] for ref in refs}, retired_at__isnull=True
    ).only("framework_id", "control_id", "title", "order")
    controls = []
    for control in found.order_by("order"):
        section = sections[control.framework_id]
        if f"{section.framework.key}:{control.control_id}" in refs:
            control.framework = section.framework  # the sections hold the frameworks: no join per control
            section.response_controls.append(control)
            controls.append(control)
    days = {section.day for section in sections.values() if section.day}
    snaps = ControlSnapshot.objects.filter(control_id__in=[c.pk for c in controls], day__in=days)
    by_control = {(snap.control_id, snap.day): snap for snap in snaps}
    pairs = [(c, by_control.get((c.pk, sections[c.framework_id].day))) for c in controls]
    pairs.sort(key=lambda pair: (pair[0].framework.title.casefold(), pair[0].order))
    minutes = registry.thresholds()["exposure_contain_minutes"]
    return Response(measures, pairs, WINDOW.days, duration_text(timedelta(minutes=minutes)))


def build(user, *, only_assessed: bool, families_of) -> dict:
    """Everything the report template reads. `families_of` is the compliance pages' folding of a framework's controls
    by family (views._families), so the report lists controls exactly as the overview does."""
    evidence = evidence_map()
    coverage = _latest_coverage()
    sections: dict[int, Section] = {}
    for framework in Framework.objects.all():
        snap = coverage.get(framework.pk)
        framework.title = framework_title(framework)
        sections[framework.pk] = Section(framework, framework.title, snap.day if snap else None, snap)
    totals = Control.objects.filter(retired_at__isnull=True).order_by().values("framework_id").annotate(n=Count("*"))
    for row in totals:
        if row["framework_id"] in sections:
            sections[row["framework_id"]].controls_total = row["n"]
    _matrix(sections, user, evidence)
    _worst(sections)
    _families_by_framework(sections, {fid: s.day for fid, s in sections.items()}, only_assessed, families_of)
    response = response_evidence(sections)
    attested, attested_total = attestations(user)
    suppressed, suppressed_total = exceptions(user)
    ordered = sorted(sections.values(), key=lambda s: s.title.casefold())
    return {
        "sections": ordered,
        "response": response,
        "attestations": attested,
        "attestations_total": attested_total,
        "exceptions": suppressed,
        "exceptions_total": suppressed_total,
        "matrix_limit": MATRIX_TOOLS,
        "listed_limit": LISTED,
        "legend": [(symbol, words) for symbol, words, _ in CELLS.values()],
    }
