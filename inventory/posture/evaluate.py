"""Posture: the status of each control for each tool, from evidence only. One rule, one statement (`_status_sql`),
read by the tool's Posture tab, the API, the CSV export and the daily snapshot (which the overview, trends and report
read).

For a live control and a tool:
- `fail`: a detector mapped to the control as *primary* has an unresolved (open or acknowledged) finding on the tool
  or on an identity bound to it;
- `pass`: otherwise, when at least one primary detector had something to examine for the tool (subjects of the kind
  it examines: inventory.posture.evidence) and completed a run at or after the moment the tool and those subjects
  last changed;
- `not_assessed` otherwise, with the reason: `no_subjects` (nothing of the kind to examine) or `not_scanned` (not
  scanned since the tool or its subjects changed); and, for controls no detector is primary for, `unmapped`,
  unless security attested the control for the tool (`attested`, until the attestation expires).

Supporting mappings are shown beside a control, never deciding it. The plain-Python specification is
`inventory.posture.evaluate_reference`; tests/inventory/test_posture_reference.py holds the two equal.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone

from inventory.choices import ToolStatus
from inventory.models import (
    AITool,
    Attestation,
    Control,
    ControlSnapshot,
    DetectorRun,
    Finding,
    FindingStatus,
    Framework,
    FrameworkSnapshot,
    PostureSnapshot,
    ToolIdentity,
)
from nhi_portal.sql import Names, datetime_param, literals

from .evidence import Evidence, evidence_map, greatest, subjects_sql

FAILING = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}

# The statement's verdict per (tool, control a detector is primary for), as a rank so that the best evidence among
# a control's detectors wins with MAX: a finding beats a clean current run, which beats a stale run, which beats
# nothing to examine.
NO_SUBJECTS, NOT_SCANNED, PASS_RANK, FAIL_RANK = 0, 1, 2, 3
STATUS_OF_RANK = {NO_SUBJECTS: "not_assessed", NOT_SCANNED: "not_assessed", PASS_RANK: "pass", FAIL_RANK: "fail"}
REASON_OF_RANK = {NO_SUBJECTS: "no_subjects", NOT_SCANNED: "not_scanned", PASS_RANK: "", FAIL_RANK: ""}


def detectors_by_control() -> dict[str, list[str]]:
    """ "FRAMEWORK:ID" -> detector keys that are primary evidence for it (the only ones that decide)."""
    return evidence_map().primary


def reason_text(reason: str, *, nouns: str = "subjects") -> str:
    return {
        "no_subjects": f"no {nouns} to examine",
        "not_scanned": "not scanned since the tool changed",
        "unmapped": "no detector assesses this control",
        "": "",
    }[reason]


@dataclass
class ControlResult:
    control: Control
    status: str  # pass | fail | not_assessed | attested
    detectors: list[str] = field(default_factory=list)  # primary
    findings: list[Finding] = field(default_factory=list)  # primary detectors' unresolved findings: the failure
    attestation: Attestation | None = None
    reason: str = ""  # no_subjects | not_scanned | unmapped, for not_assessed
    reason_text: str = ""
    supporting: list[str] = field(default_factory=list)
    related: list[Finding] = field(default_factory=list)  # supporting detectors' findings: shown, never deciding

    @property
    def label(self) -> str:
        return {"pass": "Pass", "fail": "Fail", "not_assessed": "Not assessed", "attested": "Attested"}[self.status]

    @property
    def assessable(self) -> bool:
        return bool(self.detectors)


@dataclass
class ToolPosture:
    framework: Framework
    results: list[ControlResult]

    def _count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.results)

    @property
    def assessed(self) -> int:
        """Controls with evidence for this tool: passing or failing."""
        return self._count("pass", "fail")

    @property
    def passing(self) -> int:
        return self._count("pass")

    @property
    def failing(self) -> int:
        return self._count("fail")

    @property
    def attested(self) -> int:
        return self._count("attested")

    @property
    def assessable(self) -> int:
        """Controls some detector is primary evidence for."""
        return sum(r.assessable for r in self.results)

    @property
    def awaiting(self) -> int:
        """Assessable controls without evidence for this tool (nothing to examine, or not scanned since a change)."""
        return sum(r.assessable and r.status == "not_assessed" for r in self.results)

    @property
    def score(self) -> float | None:
        """Percent of controls with evidence that pass; attested ones are not evidence and stay out."""
        return round(100 * self.passing / self.assessed) if self.assessed else None

    def assessable_results(self) -> list[ControlResult]:
        return [r for r in self.results if r.assessable]

    def other_results(self) -> list[ControlResult]:
        return [r for r in self.results if not r.assessable]


def _tool_findings(tool: AITool) -> list[Finding]:
    """Unresolved findings on the tool or its identities. Two indexed lookups, not one OR that scans every finding."""
    bound = list(ToolIdentity.objects.filter(tool=tool).values_list("identity_id", flat=True))
    unresolved = Finding.objects.filter(status__in=FAILING).select_related("identity")
    found = {f.pk: f for f in unresolved.filter(tool=tool)}
    found.update((f.pk, f) for f in unresolved.filter(identity_id__in=bound))
    return sorted(found.values(), key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), f.pk))


def tool_findings(tool: AITool) -> list[Finding]:
    return _tool_findings(tool)


def risk_tier(tool: AITool, *, findings: list[Finding] | None = None) -> str:
    """The worst severity among the tool's unresolved findings: critical, high, medium, low or none."""
    findings = _tool_findings(tool) if findings is None else findings
    worst = max((SEVERITY_RANK.get(f.severity, 0) for f in findings), default=0)
    return {4: "critical", 3: "high", 2: "medium", 1: "low", 0: "none"}[worst]


def _mapping_rows(evidence: Evidence, framework: Framework | None = None) -> list[tuple[str, int]]:
    """(detector, control pk) pairs, primary only, for the live controls of the loaded catalog."""
    controls = Control.objects.filter(retired_at__isnull=True)
    if framework is not None:
        controls = controls.filter(framework=framework)
    refs = [f"{key}:{cid}" for key, cid in ((ref.split(":", 1)) for ref in evidence.primary)]
    by_ref = {}
    if refs:
        keys = {ref.split(":", 1)[0] for ref in refs}
        rows = controls.filter(framework__key__in=keys).values_list("pk", "framework__key", "control_id")
        by_ref = {f"{key}:{cid}": pk for pk, key, cid in rows}
    return [(d, by_ref[ref]) for ref, detectors in evidence.primary.items() if ref in by_ref for d in detectors]


def _status_sql(evidence: Evidence, pairs: list[tuple[str, int]], *, now: datetime, tool_id: int | None = None):
    """A WITH clause ending in `status(tool_id, control_id, rank)`: one row per live tool (or only `tool_id`) and
    control in `pairs`, with the best evidence of the control's primary detectors (NO_SUBJECTS .. FAIL_RANK).

    Python reference: `inventory.posture.evaluate_reference.status`."""
    finding, binding, tool, run = Names(Finding), Names(ToolIdentity), Names(AITool), Names(DetectorRun)
    now_param = datetime_param(now)
    one = [] if tool_id is None else [tool_id]
    params: list = [v for pair in pairs for v in pair]
    detectors = sorted({d for d, _ in pairs})
    # One CTE per distinct thing examined: several detectors examining credentials share one pass over them.
    kinds: dict = {}
    for detector in detectors:
        for item in evidence.examined.get(detector, ()):
            kinds.setdefault(item, []).append(detector)
    kind_ctes, examined_rows, examined_params = [], [], []
    for n, (item, users) in enumerate(kinds.items()):
        sql, kind_params = subjects_sql(item, now_param=now_param, tool_id=tool_id)
        kind_ctes.append(f"kind_{n}(tool_id, changed) AS ({sql})")
        params += kind_params
        examined_rows += [f"SELECT tool_id, %s, changed FROM kind_{n}" for _ in users]
        examined_params += users
    unresolved = f"f.{finding.status} IN ({literals(FAILING)})"
    tool_only_finding = f" AND f.{finding.tool} = %s" if one else ""
    tool_only_binding = f" AND b.{binding.tool} = %s" if one else ""
    tool_only = f" AND t.{tool.pk} = %s" if one else ""
    detector_values = ", ".join(["(%s)"] * len(detectors))
    examined_union = " UNION ALL ".join(examined_rows) or "SELECT NULL, NULL, NULL WHERE FALSE"
    sql = f"""
        WITH mapping(detector, control_id) AS (VALUES {", ".join(["(%s, %s)"] * len(pairs))}),
        {", ".join([*kind_ctes, ""])}
        examined(tool_id, detector, changed) AS ({examined_union}),
        examined_latest(tool_id, detector, changed) AS (
            SELECT tool_id, detector, MAX(changed) FROM examined GROUP BY tool_id, detector
        ),
        detectors(detector) AS (VALUES {detector_values}),
        live_tools(id, changed) AS (
            SELECT t.{tool.pk}, t.{tool.updated_at} FROM {tool} t
             WHERE t.{tool.status} <> %s{tool_only}
        ),
        failing_detectors(tool_id, detector) AS (
            SELECT f.{finding.tool}, f.{finding.detector} FROM {finding} f
             WHERE {unresolved} AND f.{finding.tool} IS NOT NULL{tool_only_finding}
            UNION
            SELECT b.{binding.tool}, f.{finding.detector} FROM {finding} f
              JOIN {binding} b ON b.{binding.identity} = f.{finding.identity}
             WHERE {unresolved}{tool_only_binding}
        ),
        detector_state(tool_id, detector, rank) AS (
            SELECT t.id, d.detector,
                   CASE WHEN fd.detector IS NOT NULL THEN {FAIL_RANK}
                        WHEN e.changed IS NULL THEN {NO_SUBJECTS}
                        WHEN r.{run.ran_at} >= {greatest("e.changed", "t.changed")} THEN {PASS_RANK}
                        ELSE {NOT_SCANNED} END
              FROM live_tools t CROSS JOIN detectors d
              LEFT JOIN examined_latest e ON e.tool_id = t.id AND e.detector = d.detector
              LEFT JOIN {run} r ON r.{run.detector} = d.detector
              LEFT JOIN failing_detectors fd ON fd.tool_id = t.id AND fd.detector = d.detector
        ),
        status(tool_id, control_id, rank) AS (
            SELECT s.tool_id, m.control_id, MAX(s.rank)
              FROM detector_state s JOIN mapping m ON m.detector = s.detector
             GROUP BY s.tool_id, m.control_id
        )"""
    # In the statement's order: mapping, kinds, examined, detectors, live tools, the two failing lookups.
    return sql, [*params, *examined_params, *detectors, ToolStatus.RETIRED, *one, *one, *one]


def control_ranks(
    *, framework: Framework | None = None, tool: AITool | None = None, evidence: Evidence | None = None
) -> dict[tuple[int, int], int]:
    """(tool id, control id) -> rank, for the live tools (or `tool`) and the controls detectors are primary for (of
    `framework` when given). The one function every page, export and API answer reads statuses from."""
    evidence = evidence or evidence_map()
    pairs = _mapping_rows(evidence, framework)
    if not pairs:
        return {}
    sql, params = _status_sql(evidence, pairs, now=timezone.now(), tool_id=tool.pk if tool else None)
    with connection.cursor() as cursor:
        cursor.execute(sql + " SELECT tool_id, control_id, rank FROM status", params)
        return {(int(t), int(c)): int(r) for t, c, r in cursor.fetchall()}


def tool_posture(
    tool: AITool,
    framework: Framework,
    *,
    findings: list[Finding] | None = None,
    evidence: Evidence | None = None,
) -> ToolPosture:
    """Every live control of the framework for the tool: the assessable ones with their status (from
    `control_ranks`), evidence and reason; the others attested or not assessed. A fixed number of queries."""
    evidence = evidence or evidence_map()
    ranks = control_ranks(framework=framework, tool=tool, evidence=evidence)
    findings_by_detector: dict[str, list[Finding]] = {}
    for finding in _tool_findings(tool) if findings is None else findings:
        findings_by_detector.setdefault(finding.detector, []).append(finding)
    attestations = {
        a.control_id: a
        for a in Attestation.objects.filter(tool=tool, control__framework=framework, expires_at__gt=timezone.now())
        .select_related("attested_by")
        .order_by("attested_at")
    }
    results = []
    controls = framework.controls.filter(retired_at__isnull=True).order_by("order")
    for control in controls.only("control_id", "title", "legacy_ids", "group", "order", "framework_id"):
        control.framework = framework  # ref and links need it; one framework, no query per control
        ref = f"{framework.key}:{control.control_id}"
        detectors = evidence.primary.get(ref, [])
        supporting = evidence.supporting.get(ref, [])
        related = [f for key in supporting for f in findings_by_detector.get(key, [])]
        if detectors and (tool.pk, control.pk) in ranks:
            rank = ranks[tool.pk, control.pk]
            reason = REASON_OF_RANK[rank]
            evidence_found = [f for key in detectors for f in findings_by_detector.get(key, [])]
            result = ControlResult(
                control, STATUS_OF_RANK[rank], detectors, evidence_found if rank == FAIL_RANK else [],
                reason=reason, reason_text=reason_text(reason, nouns=evidence.nouns(ref)),
                supporting=supporting, related=related,
            )  # fmt: skip
        elif detectors:  # a retired tool: no status is computed for it
            result = ControlResult(control, "not_assessed", detectors, reason="not_scanned", supporting=supporting,
                                   reason_text="the tool is retired", related=related)  # fmt: skip
        elif control.pk in attestations:
            result = ControlResult(control, "attested", [], attestation=attestations[control.pk],
                                   supporting=supporting, related=related)  # fmt: skip
        else:
            result = ControlResult(control, "not_assessed", [], reason="unmapped", reason_text=reason_text("unmapped"),
                                   supporting=supporting, related=related)  # fmt: skip
        results.append(result)
    return ToolPosture(framework, results)


def failing_pairs(framework: Framework) -> set[tuple[int, int]]:
    """(tool id, control id) pairs failing now, for one framework (Python reference:
    `inventory.posture.evaluate_reference.failing_reference`)."""
    return {pair for pair, rank in control_ranks(framework=framework).items() if rank == FAIL_RANK}


def latest_day(framework: Framework) -> date | None:
    return FrameworkSnapshot.objects.filter(framework=framework).order_by("-day").values_list("day", flat=True).first()


_EMPTY_STATUS = "WITH status(tool_id, control_id, rank) AS (SELECT 0, 0, 0 WHERE FALSE)"


def snapshot(*, day: date | None = None) -> dict[str, int]:
    """Write the day's FrameworkSnapshot (coverage), PostureSnapshot (per tool per framework) and ControlSnapshot
    (per assessable control) rows, in SQL, from one evaluation of `_status_sql` kept in a temporary table.

    Python reference (the readable specification): `inventory.posture.evaluate_reference.snapshot_reference`;
    tests/inventory/test_posture_reference.py holds the two equal."""
    day = day or timezone.localdate()
    now = timezone.now()
    evidence = evidence_map()
    pairs = _mapping_rows(evidence)
    tool, control, attestation = Names(AITool), Names(Control), Names(Attestation)
    posture, control_snap, framework_snap = Names(PostureSnapshot), Names(ControlSnapshot), Names(FrameworkSnapshot)
    status_sql, status_params = _status_sql(evidence, pairs, now=now) if pairs else (_EMPTY_STATUS, [])
    mapped_ids = sorted({c for _, c in pairs}) or [0]
    live_tools = f"SELECT {tool.pk} AS id FROM {tool} WHERE {tool.status} <> %s"
    # Attested: controls no detector is primary for, attested for a live tool until a time still to come.
    attested = f"""
        SELECT a.{attestation.tool} AS tool_id, c.{control.framework} AS framework_id, c.{control.pk} AS control_id
          FROM {attestation} a JOIN {control} c ON c.{control.pk} = a.{attestation.control}
         WHERE a.{attestation.expires_at} > %s AND c.{control.retired_at} IS NULL
           AND c.{control.pk} NOT IN (SELECT control_id FROM posture_mapped)
           AND a.{attestation.tool} IN ({live_tools})"""
    attested_params = [datetime_param(now), ToolStatus.RETIRED]
    evidence_sum = f"SUM(CASE WHEN s.rank >= {PASS_RANK} THEN 1 ELSE 0 END)"
    failing_sum = f"SUM(CASE WHEN s.rank = {FAIL_RANK} THEN 1 ELSE 0 END)"
    passing_sum = f"SUM(CASE WHEN s.rank = {PASS_RANK} THEN 1 ELSE 0 END)"
    unassessed_sum = f"SUM(CASE WHEN s.rank < {PASS_RANK} THEN 1 ELSE 0 END)"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")  # as in the scan: JIT costs seconds here and saves nothing
        cursor.execute(f"CREATE TEMPORARY TABLE posture_status AS {status_sql} SELECT tool_id, control_id, rank "
                       "FROM status", status_params)  # fmt: skip
        values = ", ".join(["(%s)"] * len(mapped_ids))
        cursor.execute(f"CREATE TEMPORARY TABLE posture_mapped AS WITH m(control_id) AS (VALUES {values}) "
                       "SELECT control_id FROM m", mapped_ids)  # fmt: skip
        cursor.execute(
            f"""
            WITH per_tool(tool_id, framework_id, assessed, failing, unassessed) AS (
                SELECT s.tool_id, c.{control.framework}, {evidence_sum}, {failing_sum}, {unassessed_sum}
                  FROM posture_status s JOIN {control} c ON c.{control.pk} = s.control_id
                 GROUP BY s.tool_id, c.{control.framework}
            ),
            frameworks(id) AS (SELECT DISTINCT {control.framework} FROM {control} WHERE {control.retired_at} IS NULL),
            attested(tool_id, framework_id, n) AS (
                SELECT tool_id, framework_id, COUNT(DISTINCT control_id) FROM ({attested}) x
                 GROUP BY tool_id, framework_id
            )
            INSERT INTO {posture} ({posture.day}, {posture.tool}, {posture.framework}, {posture.assessed},
                                   {posture.failing}, {posture.unassessed}, {posture.attested})
            SELECT %s, t.id, f.id, COALESCE(p.assessed, 0), COALESCE(p.failing, 0), COALESCE(p.unassessed, 0),
                   COALESCE(att.n, 0)
              FROM ({live_tools}) t CROSS JOIN frameworks f
              LEFT JOIN per_tool p ON p.tool_id = t.id AND p.framework_id = f.id
              LEFT JOIN attested att ON att.tool_id = t.id AND att.framework_id = f.id
             WHERE TRUE
            ON CONFLICT ({posture.day}, {posture.tool}, {posture.framework})
            DO UPDATE SET {posture.assessed} = excluded.{posture.assessed},
                          {posture.failing} = excluded.{posture.failing},
                          {posture.unassessed} = excluded.{posture.unassessed},
                          {posture.attested} = excluded.{posture.attested}
            """,
            [*attested_params, day, ToolStatus.RETIRED],
        )
        cursor.execute(
            f"""
            INSERT INTO {control_snap} ({control_snap.day}, {control_snap.control}, {control_snap.tools_assessed},
                                        {control_snap.tools_failing}, {control_snap.tools_unassessed})
            SELECT %s, m.control_id, COALESCE({evidence_sum}, 0), COALESCE({failing_sum}, 0),
                   COALESCE({unassessed_sum}, 0)
              FROM posture_mapped m JOIN {control} c ON c.{control.pk} = m.control_id
              LEFT JOIN posture_status s ON s.control_id = m.control_id
             WHERE TRUE
             GROUP BY m.control_id
            ON CONFLICT ({control_snap.day}, {control_snap.control})
            DO UPDATE SET {control_snap.tools_assessed} = excluded.{control_snap.tools_assessed},
                          {control_snap.tools_failing} = excluded.{control_snap.tools_failing},
                          {control_snap.tools_unassessed} = excluded.{control_snap.tools_unassessed}
            """,
            [day],
        )
        fs = framework_snap
        cursor.execute(
            f"""
            WITH live(framework_id, n) AS (
                SELECT {control.framework}, COUNT(*) FROM {control} WHERE {control.retired_at} IS NULL
                 GROUP BY {control.framework}
            ),
            assessable(framework_id, n) AS (
                SELECT c.{control.framework}, COUNT(*)
                  FROM {control} c JOIN posture_mapped m ON m.control_id = c.{control.pk}
                 WHERE c.{control.retired_at} IS NULL GROUP BY c.{control.framework}
            ),
            attested(framework_id, n) AS (
                SELECT framework_id, COUNT(DISTINCT control_id) FROM ({attested}) x GROUP BY framework_id
            ),
            results(framework_id, passing, failing, unassessed) AS (
                SELECT c.{control.framework}, {passing_sum}, {failing_sum}, {unassessed_sum}
                  FROM posture_status s JOIN {control} c ON c.{control.pk} = s.control_id
                 GROUP BY c.{control.framework}
            )
            INSERT INTO {fs} ({fs.day}, {fs.framework}, {fs.controls}, {fs.assessable}, {fs.attested}, {fs.tools},
                              {fs.passing}, {fs.failing}, {fs.unassessed})
            SELECT %s, l.framework_id, l.n, COALESCE(a.n, 0), COALESCE(att.n, 0),
                   (SELECT COUNT(*) FROM ({live_tools}) t), COALESCE(r.passing, 0), COALESCE(r.failing, 0),
                   COALESCE(r.unassessed, 0)
              FROM live l
              LEFT JOIN assessable a ON a.framework_id = l.framework_id
              LEFT JOIN attested att ON att.framework_id = l.framework_id
              LEFT JOIN results r ON r.framework_id = l.framework_id
             WHERE TRUE
            ON CONFLICT ({fs.day}, {fs.framework})
            DO UPDATE SET {fs.controls} = excluded.{fs.controls}, {fs.assessable} = excluded.{fs.assessable},
                          {fs.attested} = excluded.{fs.attested}, {fs.tools} = excluded.{fs.tools},
                          {fs.passing} = excluded.{fs.passing}, {fs.failing} = excluded.{fs.failing},
                          {fs.unassessed} = excluded.{fs.unassessed}
            """,
            [*attested_params, day, ToolStatus.RETIRED],
        )
        cursor.execute("DROP TABLE posture_status")
        cursor.execute("DROP TABLE posture_mapped")
    return {
        "posture_rows": PostureSnapshot.objects.filter(day=day).count(),
        "control_rows": ControlSnapshot.objects.filter(day=day).count(),
        "framework_rows": FrameworkSnapshot.objects.filter(day=day).count(),
    }
