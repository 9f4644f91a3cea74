"""Writes that can open or clear findings, queued for a targeted detection run (issue 18).

A write records what it changed (`changes_record`, inside its own transaction, so a rolled-back write queues nothing)
as (tool or identity, topic) rows, and after commit makes sure one targeted run is queued: the first write of a burst
queues it with a short countdown (`DETECTION_DEBOUNCE_SECONDS`), and every write until that run starts finds it
queued and adds its rows to what the run will drain. A 100,000-row import is one INSERT ... SELECT of the identities
it touched and one run (`changes_after_source_run`). The run (inventory.detection.targeted) picks the detectors whose
dependencies the topics name and narrows their queries to the changed subjects.

Topics are "kind" or "kind.field", kind one of tool, identity, credential, grant, usage, source: a detector that
depends on "tool.prompt_templates" runs after a change with that topic or the bare "tool" (any field).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from nhi_portal.sql import Names, datetime_param, literal

from .models import DetectionChange, DetectionSchedule, SourceObject, SourceRun

# A queued mark older than this belongs to a task that was lost (broker restarted): the next write queues again.
SCHEDULE_STALE = timedelta(minutes=5)
_SCHEDULE_ROW = 1


def changes_record(
    *,
    topics: Iterable[str],
    tools: Iterable[int] = (),
    identities: Iterable[int] = (),
    observed_at: datetime | None = None,
) -> None:
    """Inside the writer's transaction: these tools and identities changed in these ways; queue a targeted run."""
    observed_at = observed_at or timezone.now()
    topics = sorted(set(topics))
    keys = [(DetectionChange.KeyType.TOOL, pk) for pk in set(tools) if pk is not None]
    keys += [(DetectionChange.KeyType.IDENTITY, pk) for pk in set(identities) if pk is not None]
    if not keys or not topics:
        return
    DetectionChange.objects.bulk_create(
        [
            DetectionChange(key_type=kind, key_id=pk, topic=topic, observed_at=observed_at)
            for kind, pk in keys
            for topic in topics
        ]
    )
    transaction.on_commit(targeted_run_schedule)


def changes_record_query(
    *, topic: str, key_type: str, rows: QuerySet, field: str, observed_at: datetime | None = None
) -> None:
    """Inside the writer's transaction, for a set-based write: `rows`' distinct `field` values are changed tools or
    identities, recorded in one INSERT ... SELECT however many there are; then a run is queued."""
    change = Names(DetectionChange)
    keys = rows.order_by().filter(**{f"{field}__isnull": False}).values(key_id=F(field)).distinct()
    sql, params = keys.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {change} ({change.key_type}, {change.key_id}, {change.topic}, {change.observed_at},
                                      {change.claim})
                SELECT %s, k.key_id, %s, %s, '' FROM ({sql}) k""",
            [key_type, topic, datetime_param(observed_at or timezone.now()), *params],
        )
    transaction.on_commit(targeted_run_schedule)


# A change row's topic may name several, separated by this: what one write changed at once.
TOPIC_SEPARATOR = ","
SOURCE_RUN_TOPICS = TOPIC_SEPARATOR.join(("source", "identity", "credential"))


def topics_of(rows_topics) -> set[str]:
    """The topics the change rows name, each row's split at TOPIC_SEPARATOR."""
    return {topic for topics in rows_topics for topic in topics.split(TOPIC_SEPARATOR)}


def changes_after_source_run(run_id: int) -> None:
    """After an import from a discovery source committed: every identity it created, changed, saw again or marked
    gone is a changed subject, in one statement however many rows the file had; then one run is queued."""
    run = SourceRun.objects.filter(pk=run_id).values("started_at", "kind", "account").first()
    if run is None:
        return
    change, source = Names(DetectionChange), Names(SourceObject)
    touched = f"""
        SELECT DISTINCT {source.identity} FROM {source}
         WHERE {source.last_run} = %s OR {source.first_run} = %s
            OR ({source.kind} = %s AND {source.account} = %s AND {source.gone_at} >= %s)
    """
    # One row per identity naming its three topics (TOPIC_SEPARATOR), not three rows: a 100,000-user first import
    # wrote 300,000 of them.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {change} ({change.key_type}, {change.key_id}, {change.topic}, {change.observed_at},
                                      {change.claim})
                SELECT {literal(DetectionChange.KeyType.IDENTITY)}, t.{source.identity}, %s, %s, ''
                  FROM ({touched}) t""",
            [SOURCE_RUN_TOPICS, datetime_param(run["started_at"]), run_id, run_id, run["kind"], run["account"],
             datetime_param(run["started_at"])],
        )  # fmt: skip
    targeted_run_schedule()


def source_run_committed(run_id: int) -> None:
    """For the importer: call inside its transaction; the changes are recorded once it commits."""
    transaction.on_commit(partial(changes_after_source_run, run_id))


def targeted_run_schedule() -> bool:
    """Queue one targeted run unless one is already queued; True if this call queued it. Runs after commit."""
    now = timezone.now()
    DetectionSchedule.objects.bulk_create([DetectionSchedule(pk=_SCHEDULE_ROW)], ignore_conflicts=True)
    free = Q(scheduled_at__isnull=True) | Q(scheduled_at__lt=now - SCHEDULE_STALE)
    if not DetectionSchedule.objects.filter(free, pk=_SCHEDULE_ROW).update(scheduled_at=now):
        return False
    from inventory import tasks  # the wiring; imported here because it imports every capability

    tasks.run_targeted_detection.apply_async(countdown=settings.DETECTION_DEBOUNCE_SECONDS)
    return True


def targeted_run_unschedule() -> None:
    """The run has started: writes from now on queue the next one."""
    DetectionSchedule.objects.filter(pk=_SCHEDULE_ROW).update(scheduled_at=None)
