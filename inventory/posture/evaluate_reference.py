"""Posture in plain Python: the readable specification of the posture statements in `evaluate` (`snapshot` and
`failing_pairs`, built on `_failing_sql`).

A live control's status for a tool:

- `fail`: a detector mapped to the control has an unresolved (open or acknowledged) finding on the tool itself, or
  on an identity bound to the tool;
- `pass`: detectors are mapped to it, and none of them has such a finding;
- `attested`: no detector is mapped to it, and security attested it for the tool until a time still to come;
- `not_assessed`: no detector is mapped to it and no live attestation; never counted as passing.

Retired controls have no status. The snapshot covers the tools that are not retired and the frameworks that have a
control some detector evidences. tests/inventory/test_posture_reference.py holds the statements equal to this module
over generated worlds, for every status.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from inventory.choices import ToolStatus
from inventory.models import AITool, Attestation, Control, Finding, FindingStatus, ToolIdentity

PASS, FAIL, NOT_ASSESSED, ATTESTED = "pass", "fail", "not_assessed", "attested"
STATUSES = (PASS, FAIL, NOT_ASSESSED, ATTESTED)
UNRESOLVED = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)


@dataclass
class World:
    """The facts posture reads, as Python objects: tools (`pk`, `status`), controls (`pk`, `framework_id`,
    `retired_at` and `ref`, "FRAMEWORK:ID"), findings (`detector`, `status`, `tool_id`, `identity_id`),
    attestations (`tool_id`, `control_id`, `expires_at`), bindings as (tool, identity) and the detectors mapped to
    each control ref (`evaluate.detectors_by_control()`)."""

    now: datetime
    detectors: dict[str, list[str]]
    tools: list = field(default_factory=list)
    controls: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    attestations: list = field(default_factory=list)
    bindings: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def from_database(cls, now: datetime, detectors: dict[str, list[str]]) -> "World":
        """Everything, read through the ORM (never through the statements under test). For small worlds: tests."""
        return cls(
            now=now,
            detectors=detectors,
            tools=list(AITool.objects.only("status")),
            controls=list(Control.objects.select_related("framework")),
            findings=list(Finding.objects.only("detector", "status", "tool_id", "identity_id")),
            attestations=list(Attestation.objects.only("tool_id", "control_id", "expires_at")),
            bindings=set(ToolIdentity.objects.values_list("tool", "identity")),
        )


def _failing_detectors(world: World, tool) -> set[str]:
    """Detectors with an unresolved finding on the tool or on an identity bound to it."""
    identities = {identity for tool_id, identity in world.bindings if tool_id == tool.pk}
    return {
        f.detector
        for f in world.findings
        if f.status in UNRESOLVED
        and (f.tool_id == tool.pk or (f.identity_id is not None and f.identity_id in identities))
    }


def status(world: World, tool, control, *, failing: set[str] | None = None) -> str:
    """The control's status for the tool (`failing`: `_failing_detectors`, when the caller has it already)."""
    detectors = world.detectors.get(control.ref, [])
    if detectors:
        failing = _failing_detectors(world, tool) if failing is None else failing
        return FAIL if failing.intersection(detectors) else PASS
    attested = any(
        a.tool_id == tool.pk and a.control_id == control.pk and a.expires_at > world.now for a in world.attestations
    )
    return ATTESTED if attested else NOT_ASSESSED


def statuses(world: World) -> dict[tuple[int, int], str]:
    """(tool, control) -> status, for every tool and every live control."""
    result = {}
    for tool in world.tools:
        failing = _failing_detectors(world, tool)
        for control in world.controls:
            if control.retired_at is None:
                result[tool.pk, control.pk] = status(world, tool, control, failing=failing)
    return result


def failing_reference(world: World, framework_id: int) -> set[tuple[int, int]]:
    """`evaluate.failing_pairs`: the (tool, control) pairs of the framework that fail, for every tool."""
    framework_controls = {c.pk for c in world.controls if c.framework_id == framework_id}
    return {pair for pair, found in statuses(world).items() if found == FAIL and pair[1] in framework_controls}


def snapshot_reference(world: World) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[int, tuple[int, int]]]:
    """`evaluate.snapshot`'s rows: {(tool, framework): (assessed, failing)} and {control: (tools assessed, tools
    failing)}. A control counts as assessed when it has a status other than not_assessed."""
    found = statuses(world)
    live_tools = [t.pk for t in world.tools if t.status != ToolStatus.RETIRED]
    live_controls = [c for c in world.controls if c.retired_at is None]
    mapped = [c for c in live_controls if world.detectors.get(c.ref)]
    per_tool: dict[tuple[int, int], tuple[int, int]] = {}
    for framework in sorted({c.framework_id for c in mapped}):
        controls = [c.pk for c in live_controls if c.framework_id == framework]
        for tool in live_tools:
            counts = Counter(found[tool, control] for control in controls)
            per_tool[tool, framework] = (counts[PASS] + counts[FAIL] + counts[ATTESTED], counts[FAIL])
    per_control = {c.pk: (len(live_tools), sum(found[t, c.pk] == FAIL for t in live_tools)) for c in mapped}
    return per_tool, per_control
