"""A detector's subjects turned into changes to its findings, in SQL that runs on PostgreSQL and SQLite.

The subjects are computed once into a temporary table; then only differences are written: new subjects inserted,
resolved (or no longer suppressed) ones reopened, changed tool / identity / severity updated, and findings no
longer seen resolved. A finding that is simply seen again is not touched: rewriting the ~650,000 rows a full scan
sees at a million credentials (and every index entry on them) was most of a scan's time, and its last-seen date is
its detector's latest run (DetectorRun) instead.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from inventory.models import DetectionChange, Finding, FindingStatus, ToolIdentity
from nhi_portal.sql import Names, datetime_param, literal

from . import registry

# Qualified, so that dropping it can never reach a real table of that name.
_SUBJECTS = {"postgresql": "pg_temp.scan_subjects", "sqlite": "temp.scan_subjects"}


@dataclass(frozen=True)
class Changes:
    seen: int
    inserted: int
    reopened: int
    resolved: int

    def counts(self) -> dict[str, int]:
        opened = self.inserted + self.reopened
        return {"opened": opened, "still_open": self.seen - opened, "resolved": self.resolved}


def changed_keys(claim: str, subject_type: str, subject_id: str, identity: str) -> tuple[str, list]:
    """SQL true for a subject (or finding) keyed by a change of this targeted run's `claim`: a tool by its own id,
    any other subject by its identity (a credential's or grant's identity, an identity itself). The key is a function
    of the subject alone, so a finding and the row its detector gives for the same subject are narrowed alike."""
    c = Names(DetectionChange)
    tool = literal(DetectionChange.KeyType.TOOL)
    keyed = f"SELECT {c.key_id} FROM {c} WHERE {c.claim} = %s AND {c.key_type} = %s"
    sql = (
        f"(({subject_type} = {tool} AND {subject_id} IN ({keyed})) "
        f"OR ({subject_type} <> {tool} AND {identity} IN ({keyed})))"
    )
    return sql, [claim, DetectionChange.KeyType.TOOL, claim, DetectionChange.KeyType.IDENTITY]


def subjects_sql(detector: registry.Detector, context: registry.Context, narrow: str = "") -> tuple[str, list]:
    """The detector's subjects, one row per subject even if its joins produce several, each with the tool its
    finding shows under: the one the detector named, else the lowest-id tool its identity is bound to. Python
    reference: `inventory.detection.apply_reference.subjects_reference`. `narrow`: a targeted run's claim; only the
    subjects its changes key (`changed_keys`), filtered inside the union so each detector's query is narrowed."""
    parts, params = [], []
    for queryset in detector.querysets(context):
        sql, qparams = queryset.query.sql_with_params()
        parts.append(f"SELECT s_type, s_id, s_tool, s_identity FROM ({sql}) AS part")
        params.extend(qparams)
    union = " UNION ALL ".join(parts)
    where = ""
    if narrow:
        where, keyed = changed_keys(narrow, "found.s_type", "found.s_id", "found.s_identity")
        where, params = f"WHERE {where}", params + keyed
    binding = Names(ToolIdentity)
    # Joined before grouping, the planner picks index lookups for a detector with few subjects and one hash join
    # for one with many; a lookup per subject cost the large detectors more than their own query.
    sql = f"""
        SELECT found.s_type, found.s_id, COALESCE(MIN(found.s_tool), MIN(b.{binding.tool})) AS s_tool,
               MIN(found.s_identity) AS s_identity
          FROM ({union}) AS found
          LEFT JOIN {binding} b ON found.s_tool IS NULL AND b.{binding.identity} = found.s_identity
         {where}
         GROUP BY found.s_type, found.s_id
    """
    return sql, params


def lock_detector(cursor, key: str) -> None:
    """Within the caller's transaction, take turns with any other run of this detector (a scan, a targeted run: both
    would insert the same new finding), and turn JIT compilation off: a million-row estate makes every statement here
    look expensive enough for it, which then costs up to seconds per detector and saves nothing on these plans
    (bench/scan.py). One statement for both. SQLite serializes writers anyway."""
    if connection.vendor == "postgresql":
        cursor.execute(
            "SELECT set_config('jit', 'off', true), pg_advisory_xact_lock(hashtext(%s))", [f"nhi-detector:{key}"]
        )


def _differs(left: str, right: str) -> str:
    # IS DISTINCT FROM needs SQLite 3.39; this reads the same on both.
    return f"({left} <> {right} OR ({left} IS NULL) <> ({right} IS NULL))"


def apply_subjects(
    cursor, detector: registry.Detector, context: registry.Context, *, previous_run: datetime | None, narrow: str = ""
) -> Changes:
    """Bring the detector's findings in line with what it sees now. Runs inside the caller's transaction.

    Python reference, the readable specification of each transition (new, reopen, update, resolve, unchanged):
    `inventory.detection.apply_reference.apply_reference`; tests/inventory/test_apply_reference.py holds the two
    equal. New findings are inserted last, so that the statements comparing subjects with findings never read the
    rows this run has just written (on an estate's first scan, that is every row).

    `narrow` (a targeted run's claim, inventory.detection.targeted): only the subjects and findings its changes key
    are compared, so a finding outside them is neither resolved nor touched. A finding that opens (new or reopened)
    gets `opened_at` = now and no `observed_at`: a scan cannot say which write revealed it; a targeted run then sets
    `observed_at` to its change's time."""
    f = Names(Finding)
    resolved_status, open_status = literal(FindingStatus.RESOLVED), literal(FindingStatus.OPEN)
    subjects, params = subjects_sql(detector, context, narrow)
    now, key, severity = datetime_param(context.now), detector.key, detector.severity
    previous_run = datetime_param(previous_run)
    work = _SUBJECTS[connection.vendor]
    # A temporary table lives as long as the connection; a previous failure's table must not leak into this run.
    cursor.execute(f"DROP TABLE IF EXISTS {work}")
    # CREATE TABLE AS rather than INSERT: PostgreSQL may then read the estate with parallel workers.
    cursor.execute(f"CREATE TEMPORARY TABLE {work} AS {subjects}", params)
    seen = cursor.rowcount
    if seen < 0:  # SQLite does not count the rows CREATE TABLE AS writes
        cursor.execute(f"SELECT COUNT(*) FROM {work}")
        seen = cursor.fetchone()[0]
    if connection.vendor == "postgresql":
        # Without statistics the planner takes the table for a few rows and may loop over it.
        cursor.execute(f"ANALYZE {work}")
    same_subject = f"s.s_type = {f}.{f.subject_type} AND s.s_id = {f}.{f.subject_id}"
    in_scope, scope_params = "", []
    if narrow:
        in_scope, scope_params = changed_keys(
            narrow, f"{f}.{f.subject_type}", f"{f}.{f.subject_id}", f"{f}.{f.identity}"
        )
        in_scope = f"AND {in_scope}"
    seen_subject = f"{f}.{f.detector} = %s AND {same_subject}"

    # What the detector no longer sees was last seen by its previous run: the date its open findings showed so far.
    cursor.execute(
        f"""
        UPDATE {f} SET {f.status} = {resolved_status}, {f.resolved_at} = %s,
               {f.recorded_last_seen_at} = COALESCE(%s, {f.recorded_last_seen_at})
         WHERE {f.detector} = %s AND {f.status} <> {resolved_status}
           AND NOT EXISTS (SELECT 1 FROM {work} s WHERE {same_subject}) {in_scope}
        """,
        [now, previous_run, key, *scope_params],
    )
    resolved = cursor.rowcount

    cursor.execute(
        f"""
        UPDATE {f} SET {f.status} = {open_status}, {f.recorded_last_seen_at} = %s, {f.resolved_at} = NULL,
               {f.opened_at} = %s, {f.observed_at} = NULL, {f.alerted_at} = NULL, {f.contained_at} = NULL,
               {f.contained_by} = NULL,
               {f.acknowledged_at} = NULL, {f.acknowledged_by} = NULL, {f.suppressed_until} = NULL,
               {f.suppress_reason} = '', {f.tool} = s.s_tool, {f.identity} = s.s_identity, {f.severity} = %s
          FROM {work} s
         WHERE {seen_subject}
           AND ({f}.{f.status} = {resolved_status}
                OR ({f}.{f.status} = {literal(FindingStatus.SUPPRESSED)} AND {f}.{f.suppressed_until} <= %s))
        """,
        [now, now, severity, key, now],
    )
    reopened = cursor.rowcount

    # Bindings change, and so does a detector's severity; only the findings where that shows are written.
    changed = " OR ".join(
        [_differs(f"{f}.{f.tool}", "s.s_tool"), _differs(f"{f}.{f.identity}", "s.s_identity"),
         f"{f}.{f.severity} <> %s"]
    )  # fmt: skip
    cursor.execute(
        f"""
        UPDATE {f} SET {f.tool} = s.s_tool, {f.identity} = s.s_identity, {f.severity} = %s
          FROM {work} s
         WHERE {seen_subject} AND ({changed})
        """,
        [severity, key, severity],
    )

    # NOT EXISTS makes this one anti-join. No ON CONFLICT: its per-row speculative insertion cost a third of the
    # insert, and only a scan creates findings, one at a time; were two ever to race, the unique constraint fails
    # this detector's transaction, which the scan records, rather than duplicating a finding.
    values = {
        "detector": "%s", "subject_type": "s.s_type", "subject_id": "s.s_id", "tool": "s.s_tool",
        "identity": "s.s_identity", "severity": "%s", "status": open_status, "first_seen_at": "%s",
        "recorded_last_seen_at": "%s", "resolved_at": "NULL", "acknowledged_at": "NULL", "suppressed_until": "NULL",
        "suppress_reason": "''", "opened_at": "%s", "observed_at": "NULL",
    }  # fmt: skip
    cursor.execute(
        f"""
        INSERT INTO {f} ({", ".join(getattr(f, name) for name in values)})
        SELECT {", ".join(values.values())}
          FROM {work} s
         WHERE NOT EXISTS (SELECT 1 FROM {f} WHERE {seen_subject})
        """,
        [key, severity, now, now, now, key],
    )
    inserted = cursor.rowcount
    cursor.execute(f"DROP TABLE {work}")
    return Changes(seen=seen, inserted=inserted, reopened=reopened, resolved=resolved)
