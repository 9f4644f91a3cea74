"""The detector registry. Inventory owns it; other apps (approvals) register their detectors here at start-up,
so inventory never imports them.

A detector's `query` returns one queryset, or several, each with the annotations `s_type`, `s_id`, `s_tool` and
`s_identity`: the subjects failing it. It runs inside the database; nothing loops over rows in Python.

What a detector tells posture (inventory.posture.evaluate) is declared here too:
- `controls`: the controls it is *primary* evidence for. Its findings fail them; its clean, current run over subjects
  of the kind it `examines` passes them.
- `supporting`: controls it is related evidence for. Shown beside them, never deciding pass or fail.
- `examines`: the subjects it looks at, as subject kinds ("tool", "identity", "credential", "grant"), optionally
  narrowed by field lookups on that kind's model (`examines("identity", third_party=True)`). A tool with none of them
  gives it nothing to examine, so the detector's silence is no evidence for that tool. Left empty, the detector
  examines its `subject` kind, unnarrowed.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet


@dataclass(frozen=True)
class Context:
    now: datetime
    thresholds: dict[str, int]

    def days(self, name: str) -> int:
        return self.thresholds[name]


# The kinds of subject a detector can examine; posture knows, for each, which rows a tool has and when they changed.
SUBJECT_KINDS = ("tool", "identity", "credential", "grant")


@dataclass(frozen=True)
class Examines:
    """Subjects of one kind a detector examines, optionally narrowed by ORM field lookups on that kind's model
    (AITool, ServiceIdentity, Credential, ScopeGrant), as sorted (lookup, value) pairs so that it stays hashable."""

    kind: str
    where: tuple[tuple[str, Any], ...] = ()
    # How a reason names them ("no <described> to examine") when the lookups alone cannot say it in words.
    described: str = ""

    def __post_init__(self):
        if self.kind not in SUBJECT_KINDS:
            raise ValueError(f"Unknown subject kind {self.kind!r}; one of {', '.join(SUBJECT_KINDS)}.")

    @property
    def lookups(self) -> dict[str, Any]:
        return dict(self.where)


def examines(kind: str, described: str = "", **where: Any) -> Examines:
    """`examines("credential")`, `examines("identity", third_party=True)`,
    `examines("credential", identity__provider="aws")`,
    `examines("tool", "prompt templates", prompt_templates__gt="")` (named in words where lookups cannot say it)."""
    return Examines(kind, tuple(sorted(where.items())), described)


@dataclass(frozen=True)
class Detector:
    key: str
    title: str
    severity: str
    subject: str
    query: Callable[[Context], QuerySet | Sequence[QuerySet]]
    # Framework controls it is primary evidence for, as "FRAMEWORK:ID" (see reference/controls.md).
    controls: tuple[str, ...]
    why: str
    what_to_do: str
    thresholds: dict[str, int] = field(default_factory=dict)
    # Controls it is related (supporting) evidence for: shown, never deciding pass or fail.
    supporting: tuple[str, ...] = ()
    # What it examines (see the module docstring); plain kind names are accepted. Empty: its `subject` kind.
    examines: tuple[Examines | str, ...] = ()
    # What a change must touch for a targeted run to re-run it (inventory.changes): topics "kind" or "kind.field".
    # Empty: inventory.detection.dependencies says, or every change does.
    depends_on: tuple[str, ...] = ()

    @property
    def examined(self) -> tuple[Examines, ...]:
        """What it examines, as Examines: the declared ones, or its subject kind when none are declared."""
        declared = self.examines or (self.subject,)
        return tuple(item if isinstance(item, Examines) else Examines(item) for item in declared)

    def querysets(self, context: Context) -> list[QuerySet]:
        result = self.query(context)
        return list(result) if isinstance(result, list | tuple) else [result]


_REGISTRY: dict[str, Detector] = {}


def register(detector: Detector) -> Detector:
    if detector.key in _REGISTRY and _REGISTRY[detector.key] is not detector:
        raise ValueError(f"A detector named {detector.key!r} is already registered.")
    detector.examined  # noqa: B018 (an unknown subject kind fails at start-up, not in the first posture page)
    overlap = set(detector.controls) & set(detector.supporting)
    if overlap:
        raise ValueError(f"{detector.key}: {', '.join(sorted(overlap))} both primary and supporting.")
    _REGISTRY[detector.key] = detector
    return detector


def all_detectors() -> list[Detector]:
    return sorted(_REGISTRY.values(), key=lambda d: d.key)


def get(key: str) -> Detector:
    return _REGISTRY[key]


def thresholds() -> dict[str, int]:
    """Every detector's default thresholds, overridden by settings.NHI_DETECTION_THRESHOLDS."""
    merged: dict[str, int] = {}
    for detector in _REGISTRY.values():
        merged.update(detector.thresholds)
    merged.update(getattr(settings, "NHI_DETECTION_THRESHOLDS", {}))
    return merged
