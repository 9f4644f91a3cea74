"""Posture: findings turned into pass / fail per control, per tool and across tools.

A control passes for a tool when no unresolved (open or acknowledged) finding of a detector mapped to it concerns
the tool, its identities, their credentials or grants; it fails with those findings as evidence. Controls no
detector evidences are "not assessed" (never counted as passing) unless security attested them for the tool.
The daily snapshot is set-based SQL; the overview pages read the snapshots.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db import connection, transaction
from django.utils import timezone

from inventory.choices import ToolStatus
from inventory.detection import registry
from inventory.models import (
    AITool,
    Attestation,
    Control,
    ControlSnapshot,
    Finding,
    FindingStatus,
    Framework,
    PostureSnapshot,
    ToolIdentity,
)
from nhi_portal.sql import Names, datetime_param, literal, literals

FAILING = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}


def detectors_by_control() -> dict[str, list[str]]:
    """ "FRAMEWORK:ID" -> detector keys that evidence it."""
    mapping: dict[str, list[str]] = defaultdict(list)
    for detector in registry.all_detectors():
        for ref in detector.controls:
            mapping[ref].append(detector.key)
    return dict(mapping)


@dataclass
class ControlResult:
    control: Control
    status: str  # pass | fail | not_assessed | attested
    detectors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    attestation: Attestation | None = None

    @property
    def label(self) -> str:
        return {"pass": "Pass", "fail": "Fail", "not_assessed": "Not assessed", "attested": "Attested"}[self.status]


@dataclass
class ToolPosture:
    framework: Framework
    results: list[ControlResult]

    @property
    def assessed(self) -> int:
        return sum(r.status != "not_assessed" for r in self.results)

    @property
    def passing(self) -> int:
        return sum(r.status in ("pass", "attested") for r in self.results)

    @property
    def score(self) -> float | None:
        return round(100 * self.passing / self.assessed) if self.assessed else None


def _tool_findings(tool: AITool) -> list[Finding]:
    """Unresolved findings on the tool or its identities. Two indexed lookups, not one OR that scans every finding."""
    bound = list(ToolIdentity.objects.filter(tool=tool).values_list("identity_id", flat=True))
    unresolved = Finding.objects.filter(status__in=FAILING).select_related("identity")
    found = {f.pk: f for f in unresolved.filter(tool=tool)}
    found.update((f.pk, f) for f in unresolved.filter(identity_id__in=bound))
    return sorted(found.values(), key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), f.pk))


def tool_posture(tool: AITool, framework: Framework, *, findings: list[Finding] | None = None) -> ToolPosture:
    mapping = detectors_by_control()
    findings_by_detector: dict[str, list[Finding]] = defaultdict(list)
    for finding in _tool_findings(tool) if findings is None else findings:
        findings_by_detector[finding.detector].append(finding)
    attestations = {
        a.control_id: a
        for a in Attestation.objects.filter(tool=tool, control__framework=framework, expires_at__gt=timezone.now())
        .select_related("attested_by")
        .order_by("attested_at")
    }
    results = []
    for control in framework.controls.filter(retired_at__isnull=True).order_by("order"):
        detectors = mapping.get(f"{framework.key}:{control.control_id}", [])
        evidence = [f for key in detectors for f in findings_by_detector.get(key, [])]
        if detectors:
            status = "fail" if evidence else "pass"
        else:
            status = "attested" if control.pk in attestations else "not_assessed"
        results.append(ControlResult(control, status, detectors, evidence, attestations.get(control.pk)))
    return ToolPosture(framework, results)


def tool_findings(tool: AITool) -> list[Finding]:
    return _tool_findings(tool)


def risk_tier(tool: AITool, *, findings: list[Finding] | None = None) -> str:
    """The worst severity among the tool's unresolved findings: critical, high, medium, low or none."""
    findings = _tool_findings(tool) if findings is None else findings
    worst = max((SEVERITY_RANK.get(f.severity, 0) for f in findings), default=0)
    return {4: "critical", 3: "high", 2: "medium", 1: "low", 0: "none"}[worst]


def _mapping_rows() -> list[tuple[str, int]]:
    """(detector, control pk) pairs for the controls of the loaded catalog."""
    ids = {
        f"{key}:{cid}": pk
        for pk, key, cid in Control.objects.filter(retired_at__isnull=True).values_list(
            "pk", "framework__key", "control_id"
        )
    }
    return [(d, ids[ref]) for ref, detectors in detectors_by_control().items() if ref in ids for d in detectors]


def snapshot(*, day: date | None = None) -> dict[str, int]:
    """Write today's PostureSnapshot (per tool per framework) and ControlSnapshot (per control) rows, in SQL.

    Python reference (the readable specification): `inventory.posture.evaluate_reference.snapshot_reference`;
    tests/inventory/test_posture_reference.py holds the two equal."""
    day = day or timezone.localdate()
    pairs = _mapping_rows()
    if not pairs:
        return {"posture_rows": 0, "control_rows": 0}
    failing_sql, mapping_params = _failing_sql(pairs)
    tool, control, attestation = Names(AITool), Names(Control), Names(Attestation)
    posture, control_snap = Names(PostureSnapshot), Names(ControlSnapshot)
    now = datetime_param(timezone.now())
    common = f"""{failing_sql},
        mapped AS (SELECT DISTINCT control_id FROM mapping),
        live_tools(id) AS (SELECT {tool.pk} FROM {tool} WHERE {tool.status} <> {literal(ToolStatus.RETIRED)})
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            common
            + f"""
            , assessed(framework_id, n) AS (
                SELECT c.{control.framework}, COUNT(*) FROM {control} c JOIN mapped m ON m.control_id = c.{control.pk}
                 GROUP BY c.{control.framework}
            ),
            fails(tool_id, framework_id, n) AS (
                SELECT fl.tool_id, c.{control.framework}, COUNT(*)
                  FROM failing fl JOIN {control} c ON c.{control.pk} = fl.control_id
                 GROUP BY fl.tool_id, c.{control.framework}
            ),
            attested(tool_id, framework_id, n) AS (
                SELECT a.{attestation.tool}, c.{control.framework}, COUNT(DISTINCT a.{attestation.control})
                  FROM {attestation} a JOIN {control} c ON c.{control.pk} = a.{attestation.control}
                 WHERE a.{attestation.expires_at} > %s AND c.{control.retired_at} IS NULL
                   AND c.{control.pk} NOT IN (SELECT control_id FROM mapped)
                 GROUP BY a.{attestation.tool}, c.{control.framework}
            )
            INSERT INTO {posture} ({posture.day}, {posture.tool}, {posture.framework}, {posture.assessed},
                                   {posture.failing})
            SELECT %s, t.id, a.framework_id, a.n + COALESCE(att.n, 0), COALESCE(fs.n, 0)
              FROM live_tools t CROSS JOIN assessed a
              LEFT JOIN fails fs ON fs.tool_id = t.id AND fs.framework_id = a.framework_id
              LEFT JOIN attested att ON att.tool_id = t.id AND att.framework_id = a.framework_id
             WHERE true
            ON CONFLICT ({posture.day}, {posture.tool}, {posture.framework})
            DO UPDATE SET {posture.assessed} = excluded.{posture.assessed},
                          {posture.failing} = excluded.{posture.failing}
            """,
            [*mapping_params, now, day],
        )
        cursor.execute(
            common
            + f"""
            , tool_count(n) AS (SELECT COUNT(*) FROM live_tools),
            -- One grouped pass over the failing pairs; a subquery per control would redo the whole CTE each time.
            failing_per_control(control_id, n) AS (
                SELECT fl.control_id, COUNT(*) FROM failing fl JOIN live_tools lt ON lt.id = fl.tool_id
                 GROUP BY fl.control_id
            )
            INSERT INTO {control_snap} ({control_snap.day}, {control_snap.control}, {control_snap.tools_assessed},
                                        {control_snap.tools_failing})
            SELECT %s, m.control_id, (SELECT n FROM tool_count), COALESCE(fpc.n, 0)
              FROM mapped m LEFT JOIN failing_per_control fpc ON fpc.control_id = m.control_id WHERE true
            ON CONFLICT ({control_snap.day}, {control_snap.control})
            DO UPDATE SET {control_snap.tools_assessed} = excluded.{control_snap.tools_assessed},
                          {control_snap.tools_failing} = excluded.{control_snap.tools_failing}
            """,
            [*mapping_params, day],
        )
    return {
        "posture_rows": PostureSnapshot.objects.filter(day=day).count(),
        "control_rows": ControlSnapshot.objects.filter(day=day).count(),
    }


def latest_day(framework: Framework) -> date | None:
    row = PostureSnapshot.objects.filter(framework=framework).order_by("-day").values_list("day", flat=True).first()
    return row


def _failing_sql(pairs: list[tuple[str, int]]) -> tuple[str, list]:
    """A WITH clause ending in `failing(tool_id, control_id)`: the controls each tool fails now, via findings on the
    tool itself or on any identity bound to it. Python reference: `inventory.posture.evaluate_reference.status`."""
    finding, binding = Names(Finding), Names(ToolIdentity)
    unresolved = f"f.{finding.status} IN ({literals(FAILING)})"
    values = ", ".join(["(%s, %s)"] * len(pairs))
    sql = f"""
        WITH mapping(detector, control_id) AS (VALUES {values}),
        failing_detectors(tool_id, detector) AS (
            SELECT f.{finding.tool}, f.{finding.detector} FROM {finding} f
             WHERE {unresolved} AND f.{finding.tool} IS NOT NULL
            UNION
            SELECT b.{binding.tool}, f.{finding.detector} FROM {finding} f
              JOIN {binding} b ON b.{binding.identity} = f.{finding.identity}
             WHERE {unresolved}
        ),
        failing(tool_id, control_id) AS (
            SELECT DISTINCT fd.tool_id, m.control_id
              FROM failing_detectors fd JOIN mapping m ON m.detector = fd.detector
        )"""
    return sql, [v for pair in pairs for v in pair]


def failing_pairs(framework: Framework) -> set[tuple[int, int]]:
    """(tool id, control id) pairs failing now, for one framework, computed in SQL (Python reference:
    `inventory.posture.evaluate_reference.failing_reference`)."""
    controls = set(framework.controls.values_list("pk", flat=True))
    pairs = [(d, c) for d, c in _mapping_rows() if c in controls]
    if not pairs:
        return set()
    sql, params = _failing_sql(pairs)
    with connection.cursor() as cursor:
        cursor.execute(sql + " SELECT tool_id, control_id FROM failing", params)
        return {(int(t), int(c)) for t, c in cursor.fetchall()}
