"""Posture in plain Python: the readable specification of the posture statement in `evaluate` (`_status_sql`, read by
`control_ranks`, `tool_posture`, `failing_pairs` and `snapshot`).

For a live control and a tool, with the detectors mapped to the control as *primary* (supporting ones never count):

- `fail`: one of them has an unresolved (open or acknowledged) finding on the tool itself, or on an identity bound to
  the tool;
- `pass`: otherwise, when one of them has something to examine for the tool (subjects of a kind it examines, reached
  through the tool's bindings: `subjects_changed`) and its last run is at or after the latest of the tool's
  `updated_at` and those subjects' last change;
- `not_assessed`: otherwise: `no_subjects` when none of them has anything to examine, `not_scanned` when one has but
  has not run since the change;
- for a control no detector is primary for: `attested` while security's attestation for the tool lasts, else
  `not_assessed` (`unmapped`).

Retired controls have no status, retired tools are not evaluated. tests/inventory/test_posture_reference.py holds the
statements equal to this module over generated worlds, for every status and reason.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from inventory.choices import GrantStatus, IdentityStatus, ToolStatus
from inventory.models import (
    AITool,
    Attestation,
    Control,
    Credential,
    DetectorRun,
    Finding,
    FindingStatus,
    ScopeGrant,
    ServiceIdentity,
    ToolIdentity,
)

from .evidence import KIND_MODELS, Evidence

PASS, FAIL, NOT_ASSESSED, ATTESTED = "pass", "fail", "not_assessed", "attested"
STATUSES = (PASS, FAIL, NOT_ASSESSED, ATTESTED)
UNRESOLVED = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)


@dataclass
class World:
    """The facts posture reads, as Python objects (read through the ORM, never through the statement under test)."""

    now: datetime
    evidence: Evidence
    runs: dict[str, datetime] = field(default_factory=dict)
    tools: list = field(default_factory=list)
    controls: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    attestations: list = field(default_factory=list)
    bindings: list = field(default_factory=list)  # ToolIdentity rows: tool_id, identity_id, created_at
    identities: dict = field(default_factory=dict)
    credentials: list = field(default_factory=list)
    grants: list = field(default_factory=list)
    # Examines -> the pks of its kind's rows its lookups select. The narrowing is an ORM filter a detector declares;
    # both forms read it through the ORM (the statement as a compiled subquery), the kinds' rules are what differ.
    narrowed: dict = field(default_factory=dict)

    @classmethod
    def from_database(cls, now: datetime, evidence: Evidence) -> "World":
        """Everything, for small worlds: tests."""
        return cls(
            now=now,
            evidence=evidence,
            runs=dict(DetectorRun.objects.values_list("detector", "ran_at")),
            tools=list(AITool.objects.all()),
            controls=list(Control.objects.select_related("framework")),
            findings=list(Finding.objects.only("detector", "status", "tool_id", "identity_id")),
            attestations=list(Attestation.objects.only("tool_id", "control_id", "expires_at")),
            bindings=list(ToolIdentity.objects.all()),
            identities={i.pk: i for i in ServiceIdentity.objects.all()},
            credentials=list(Credential.objects.all()),
            grants=list(ScopeGrant.objects.all()),
            narrowed={
                item: set(KIND_MODELS[item.kind].objects.filter(**item.lookups).values_list("pk", flat=True))
                for items in evidence.examined.values()
                for item in items
                if item.where
            },
        )


def _matches(world: World, row, item) -> bool:
    """Whether the row is among those the Examines lookups select (all rows when it declares none)."""
    return not item.where or row.pk in world.narrowed[item]


def subjects_changed(world: World, tool, item) -> datetime | None:
    """The latest change among the tool's subjects of `item` (None when it has none): `evidence.subjects_sql`."""
    if item.kind == "tool":
        return tool.updated_at if _matches(world, tool, item) else None
    changes = []
    for binding in world.bindings:
        if binding.tool_id != tool.pk:
            continue
        identity = world.identities[binding.identity_id]
        if item.kind == "identity":
            if identity.status == IdentityStatus.ACTIVE and _matches(world, identity, item):
                changes.append(max(binding.created_at, identity.updated_at))
        elif item.kind == "credential":
            for credential in world.credentials:
                live = credential.revoked_at is None and (
                    credential.expires_at is None or credential.expires_at > world.now
                )
                if credential.identity_id == identity.pk and live and _matches(world, credential, item):
                    rotated = credential.last_rotated_at or credential.created_at
                    changes.append(max(binding.created_at, credential.created_at, rotated, credential.updated_at))
        else:
            for grant in world.grants:
                live = grant.status == GrantStatus.ACTIVE and (grant.expires_at is None or grant.expires_at > world.now)
                if grant.identity_id == identity.pk and live and _matches(world, grant, item):
                    changes.append(max(binding.created_at, grant.granted_at, grant.updated_at))
    return max(changes, default=None)


def _failing_detectors(world: World, tool) -> set[str]:
    """Detectors with an unresolved finding on the tool or on an identity bound to it."""
    identities = {b.identity_id for b in world.bindings if b.tool_id == tool.pk}
    return {
        f.detector
        for f in world.findings
        if f.status in UNRESOLVED
        and (f.tool_id == tool.pk or (f.identity_id is not None and f.identity_id in identities))
    }


def detector_verdict(world: World, tool, detector: str, failing: set[str]) -> tuple[str, str]:
    """One primary detector's word on the tool: (fail|pass|not_assessed, reason)."""
    if detector in failing:
        return FAIL, ""
    changes = [subjects_changed(world, tool, item) for item in world.evidence.examined.get(detector, ())]
    changes = [c for c in changes if c is not None]
    if not changes:
        return NOT_ASSESSED, "no_subjects"
    ran_at = world.runs.get(detector)
    if ran_at is not None and ran_at >= max(max(changes), tool.updated_at):
        return PASS, ""
    return NOT_ASSESSED, "not_scanned"


def status(world: World, tool, control, *, failing: set[str] | None = None) -> tuple[str, str]:
    """The control's (status, reason) for the tool (`failing`: `_failing_detectors`, when the caller has it)."""
    detectors = world.evidence.primary.get(control.ref, [])
    if detectors:
        failing = _failing_detectors(world, tool) if failing is None else failing
        verdicts = [detector_verdict(world, tool, d, failing) for d in detectors]
        # The best evidence wins: a finding, then a clean current run, then a stale run, then nothing to examine.
        order = [(FAIL, ""), (PASS, ""), (NOT_ASSESSED, "not_scanned"), (NOT_ASSESSED, "no_subjects")]
        return min(verdicts, key=order.index)
    attested = any(
        a.tool_id == tool.pk and a.control_id == control.pk and a.expires_at > world.now for a in world.attestations
    )
    return (ATTESTED, "") if attested else (NOT_ASSESSED, "unmapped")


def statuses(world: World) -> dict[tuple[int, int], tuple[str, str]]:
    """(tool, control) -> (status, reason), for every live tool and every live control."""
    result = {}
    for tool in world.tools:
        if tool.status == ToolStatus.RETIRED:
            continue
        failing = _failing_detectors(world, tool)
        for control in world.controls:
            if control.retired_at is None:
                result[tool.pk, control.pk] = status(world, tool, control, failing=failing)
    return result


def failing_reference(world: World, framework_id: int) -> set[tuple[int, int]]:
    """`evaluate.failing_pairs`: the (tool, control) pairs of the framework that fail."""
    framework_controls = {c.pk for c in world.controls if c.framework_id == framework_id}
    return {pair for pair, (found, _) in statuses(world).items() if found == FAIL and pair[1] in framework_controls}


def snapshot_reference(world: World) -> dict:
    """`evaluate.snapshot`'s rows: `tools` {(tool, framework): (assessed, failing, unassessed, attested)},
    `controls` {control: (tools assessed, tools failing, tools unassessed)} for the assessable controls, and
    `frameworks` {framework: (controls, assessable, attested, tools, passing, failing, unassessed)}."""
    found = statuses(world)
    live_tools = [t.pk for t in world.tools if t.status != ToolStatus.RETIRED]
    live_controls = [c for c in world.controls if c.retired_at is None]
    mapped = [c for c in live_controls if world.evidence.primary.get(c.ref)]
    per_tool, per_framework = {}, {}
    for framework in sorted({c.framework_id for c in live_controls}):
        controls = [c for c in live_controls if c.framework_id == framework]
        total = Counter()
        for tool in live_tools:
            counts = Counter(found[tool, c.pk] for c in controls)
            unassessed = sum(
                found[tool, c.pk] == (NOT_ASSESSED, r) for c in controls for r in ("no_subjects", "not_scanned")
            )
            per_tool[tool, framework] = (
                counts[PASS, ""] + counts[FAIL, ""],
                counts[FAIL, ""],
                unassessed,
                counts[ATTESTED, ""],
            )
            total.update({"passing": counts[PASS, ""], "failing": counts[FAIL, ""], "unassessed": unassessed})
        attested_controls = {c.pk for c in controls for t in live_tools if found[t, c.pk][0] == ATTESTED}
        assessable = sum(1 for c in controls if c in mapped)
        per_framework[framework] = (
            len(controls), assessable, len(attested_controls), len(live_tools),
            total["passing"], total["failing"], total["unassessed"],
        )  # fmt: skip
    per_control = {}
    for c in mapped:
        results = [found[t, c.pk][0] for t in live_tools]
        per_control[c.pk] = (
            results.count(PASS) + results.count(FAIL),
            results.count(FAIL),
            results.count(NOT_ASSESSED),
        )
    return {"tools": per_tool, "controls": per_control, "frameworks": per_framework}
