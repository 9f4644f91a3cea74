"""Detection apply in plain Python: the readable specification of `apply.subjects_sql` and `apply.apply_subjects`.

A detector's run compares what it sees now (its subjects) with its findings, one finding per (detector, subject), and
each finding takes exactly one transition:

- `new`: seen, and no finding yet: inserted open, first and last seen now;
- `reopen`: seen, and its finding is resolved, or suppressed until a time that has come: open again, last seen now,
  its triage (acknowledgement, suppression) cleared, tool, identity and severity as seen now;
- `update`: seen, its finding open, acknowledged or still suppressed, and the tool, identity or severity differs
  from what is seen now: those three follow (nothing else is written);
- `resolve`: not seen, and not resolved: resolved now, last seen at the detector's previous run (kept without one);
- `unchanged`: seen with nothing differing, or not seen and resolved already.

Findings of other detectors are never touched. tests/inventory/test_apply_reference.py holds the statements equal
to this module over generated findings and subjects, for every transition.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from inventory.models import FindingStatus

NEW, REOPEN, UPDATE, RESOLVE, UNCHANGED = "new", "reopen", "update", "resolve", "unchanged"
TRANSITIONS = (NEW, REOPEN, UPDATE, RESOLVE, UNCHANGED)
# What a finding is, as the statements write it.
FIELDS = (
    "detector", "subject_type", "subject_id", "tool_id", "identity_id", "severity", "status", "first_seen_at",
    "recorded_last_seen_at", "resolved_at", "acknowledged_at", "acknowledged_by_id", "suppressed_until",
    "suppress_reason",
)  # fmt: skip
_TRIAGE_CLEARED = {"acknowledged_at": None, "acknowledged_by_id": None, "suppressed_until": None, "suppress_reason": ""}


@dataclass(frozen=True)
class Subject:
    """A row of a detector's query: `s_type`, `s_id`, `s_tool` and `s_identity`."""

    type: str
    id: int
    tool: int | None
    identity: int | None


def subjects_reference(rows: Iterable[Subject], bindings: set[tuple[int, int]]) -> dict[tuple[str, int], Subject]:
    """One subject per (type, id), however many rows the detector gave for it. Its tool is the lowest one a row
    named; when no row named one, the lowest-id tool bound to the identity of a row; else none. Its identity is the
    lowest a row named."""
    grouped: dict[tuple[str, int], list[Subject]] = defaultdict(list)
    for row in rows:
        grouped[row.type, row.id].append(row)
    subjects = {}
    for (kind, pk), found in grouped.items():
        named = [row.tool for row in found if row.tool is not None]
        bound = [tool for row in found for tool, identity in bindings if identity == row.identity]
        tool = min(named) if named else min(bound, default=None)
        identity = min((row.identity for row in found if row.identity is not None), default=None)
        subjects[kind, pk] = Subject(kind, pk, tool, identity)
    return subjects


def state(finding) -> dict:
    """A finding (a Finding, or anything with its attributes) as the fields the statements write."""
    return {name: getattr(finding, name) for name in FIELDS}


def transition(finding: dict | None, subject: Subject | None, *, severity: str, now: datetime) -> str:
    """Which of the five a finding (None: there is none) takes, given its subject as seen now (None: not seen)."""
    if subject is None:
        return RESOLVE if finding is not None and finding["status"] != FindingStatus.RESOLVED else UNCHANGED
    if finding is None:
        return NEW
    suppression_over = finding["status"] == FindingStatus.SUPPRESSED and (
        finding["suppressed_until"] is not None and finding["suppressed_until"] <= now
    )
    if finding["status"] == FindingStatus.RESOLVED or suppression_over:
        return REOPEN
    if (finding["tool_id"], finding["identity_id"], finding["severity"]) != (subject.tool, subject.identity, severity):
        return UPDATE
    return UNCHANGED


def _after(change: str, finding: dict | None, subject: Subject | None, detector: str, severity: str, now, previous):
    if change == UNCHANGED:
        return finding
    if change == RESOLVE:
        last_seen = finding["recorded_last_seen_at"] if previous is None else previous
        return finding | {"status": FindingStatus.RESOLVED, "resolved_at": now, "recorded_last_seen_at": last_seen}
    seen = {"tool_id": subject.tool, "identity_id": subject.identity, "severity": severity}
    if change == UPDATE:
        return finding | seen
    opened = {"status": FindingStatus.OPEN, "recorded_last_seen_at": now, "resolved_at": None, **_TRIAGE_CLEARED}
    if change == REOPEN:
        return finding | seen | opened
    identity = {"detector": detector, "subject_type": subject.type, "subject_id": subject.id, "first_seen_at": now}
    return identity | seen | opened


@dataclass(frozen=True)
class Applied:
    """The detector's findings after the run, by (subject type, subject id), and the transition each took."""

    findings: dict[tuple[str, int], dict]
    transitions: dict[tuple[str, int], str]

    def counts(self) -> dict[str, int]:
        """As `apply.Changes` counts them (`seen` aside: that is the number of subjects)."""
        taken = list(self.transitions.values())
        return {"inserted": taken.count(NEW), "reopened": taken.count(REOPEN), "resolved": taken.count(RESOLVE)}


def apply_reference(
    findings: Iterable[dict],
    subjects: dict[tuple[str, int], Subject],
    *,
    detector: str,
    severity: str,
    now: datetime,
    previous_run: datetime | None,
) -> Applied:
    """Every finding of `detector` (as `state` gives them) after a run that sees `subjects` (`subjects_reference`)."""
    before = {(f["subject_type"], f["subject_id"]): f for f in findings if f["detector"] == detector}
    after, transitions = {}, {}
    for key in before.keys() | subjects.keys():
        finding, subject = before.get(key), subjects.get(key)
        change = transitions[key] = transition(finding, subject, severity=severity, now=now)
        after[key] = _after(change, finding, subject, detector, severity, now, previous_run)
    return Applied(after, transitions)
