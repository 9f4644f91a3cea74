"""Targeted detection runs (issue 18): the changes writes queued (inventory.changes) drained in one run, the affected
detectors re-run on the changed subjects only, with the same set-based SQL as a scan (apply.apply_subjects, narrowed),
so a finding opens, reopens or resolves within seconds of the write that caused it, not at the next nightly scan.

One run drains every change waiting when it starts (a burst of writes, a 100,000-row import: one run). It records
results exactly as a scan does (first seen, reopen, resolve) but does not move a detector's last full run
(DetectorRun.ran_at): it saw only some subjects. The daily full scan stays the safety net.
"""

import logging
import time
import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Min, OuterRef, Subquery
from django.utils import timezone

from inventory import changes
from inventory.compromise import compromise_lift
from inventory.models import DetectionChange, DetectorRun, Finding, ToolIdentity
from nhi_portal.sql import Names, literal

from . import registry
from .alerts import alerts_queue
from .apply import apply_subjects, lock_detector
from .dependencies import affected

logger = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(minutes=30)


def _claim() -> str | None:
    """Take every waiting change, and add the subjects each reaches through a binding: a tool's change re-checks the
    identities bound to it, an identity's change the tools it is bound to (their findings show it)."""
    claim = uuid.uuid4().hex
    with transaction.atomic():
        # A run whose worker died left its changes claimed: they wait again once old enough that no live run still
        # holds them (running them twice is harmless: apply is idempotent, and alerts go once per opening).
        abandoned = timezone.now() - ABANDONED_AFTER
        DetectionChange.objects.exclude(claim="").filter(observed_at__lt=abandoned).update(claim="")
        if not DetectionChange.objects.filter(claim="").update(claim=claim):
            return None
        change, binding = Names(DetectionChange), Names(ToolIdentity)
        tool, identity = literal(DetectionChange.KeyType.TOOL), literal(DetectionChange.KeyType.IDENTITY)
        with connection.cursor() as cursor:
            for source, target, via, to in ((tool, identity, binding.tool, binding.identity),
                                            (identity, tool, binding.identity, binding.tool)):  # fmt: skip
                cursor.execute(
                    f"""INSERT INTO {change} ({change.key_type}, {change.key_id}, {change.topic},
                                              {change.observed_at}, {change.claim})
                        SELECT {target}, b.{to}, c.{change.topic}, c.{change.observed_at}, c.{change.claim}
                          FROM {change} c JOIN {binding} b ON b.{via} = c.{change.key_id}
                         WHERE c.{change.claim} = %s AND c.{change.key_type} = {source}""",
                    [claim],
                )
    return claim


def _observed(claim: str, key: str, now) -> None:
    """The findings this run opened were observed when the earliest change that keys them was written."""
    earliest = DetectionChange.objects.filter(claim=claim)
    by_tool = earliest.filter(key_type="tool", key_id=OuterRef("subject_id"))
    by_identity = earliest.filter(key_type="identity", key_id=OuterRef("identity_id"))
    opened = Finding.objects.filter(detector=key, opened_at=now)

    def first(changes):
        return Subquery(changes.order_by().values("claim").annotate(at=Min("observed_at")).values("at")[:1])

    opened.filter(subject_type="tool").update(observed_at=first(by_tool))
    opened.exclude(subject_type="tool").update(observed_at=first(by_identity))


def targeted_run() -> dict:
    """Drain the waiting changes: run the detectors they affect on the changed subjects, lift containment where a
    credential change now allows it, and queue alerts for what opened. Returns counts per detector."""
    changes.targeted_run_unschedule()
    claim = _claim()
    if claim is None:
        return {"changes": 0}
    started = time.perf_counter()
    topics = changes.topics_of(DetectionChange.objects.filter(claim=claim).values_list("topic", flat=True).distinct())
    identities = DetectionChange.objects.filter(claim=claim, key_type="identity").values_list("key_id", flat=True)
    context = registry.Context(now=timezone.now(), thresholds=registry.thresholds())
    results: dict[str, dict] = {}
    for detector in affected(topics):
        results[detector.key] = _run_one(detector, context, claim)
    with transaction.atomic():
        compromise_lift(identity_ids=identities)
    alerts_queue(opened_at=context.now)
    count = DetectionChange.objects.filter(claim=claim).count()
    DetectionChange.objects.filter(claim=claim).delete()
    elapsed = time.perf_counter() - started
    logger.info("targeted detection: %s changes, %s detectors, %.3f s", count, len(results), elapsed)
    return {"changes": count, "detectors": results}


def _run_one(detector: registry.Detector, context: registry.Context, claim: str) -> dict:
    started = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            lock_detector(cursor, detector.key)
            # No previous run: what a targeted run resolves was last seen when its own row last said.
            result = apply_subjects(cursor, detector, context, previous_run=None, narrow=claim).counts()
            _observed(claim, detector.key, context.now)
            if result["opened"] or result["resolved"]:
                unresolved = Finding.objects.filter(detector=detector.key).unresolved().count()
                DetectorRun.objects.filter(detector=detector.key).update(unresolved=unresolved)
    except Exception as error:  # one detector failing must not keep the others' findings back; the scan catches up
        logger.exception("targeted run of detector %s failed", detector.key)
        return {"error": f"{type(error).__name__}: {error}"[:500]}
    return result | {"ms": round((time.perf_counter() - started) * 1000)}
