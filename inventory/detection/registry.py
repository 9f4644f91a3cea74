"""The detector registry. Inventory owns it; other apps (approvals) register their detectors here at start-up,
so inventory never imports them.

A detector's `query` returns one queryset, or several, each with the annotations `s_type`, `s_id`, `s_tool` and
`s_identity`: the subjects failing it. It runs inside the database; nothing loops over rows in Python.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet


@dataclass(frozen=True)
class Context:
    now: datetime
    thresholds: dict[str, int]

    def days(self, name: str) -> int:
        return self.thresholds[name]


@dataclass(frozen=True)
class Detector:
    key: str
    title: str
    severity: str
    subject: str
    query: Callable[[Context], QuerySet | Sequence[QuerySet]]
    # Framework controls it evidences, as "FRAMEWORK:ID" (see reference/controls.md); primary first.
    controls: tuple[str, ...]
    why: str
    what_to_do: str
    thresholds: dict[str, int] = field(default_factory=dict)

    def querysets(self, context: Context) -> list[QuerySet]:
        result = self.query(context)
        return list(result) if isinstance(result, list | tuple) else [result]


_REGISTRY: dict[str, Detector] = {}


def register(detector: Detector) -> Detector:
    if detector.key in _REGISTRY and _REGISTRY[detector.key] is not detector:
        raise ValueError(f"A detector named {detector.key!r} is already registered.")
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
