"""Time the audit pages at the volume of a busy gateway: p50 / p95 per page and filter, at millions of access events.

    .venv/bin/python bench/audit_pages.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_portal_audit_bench]
                                          [--events 2000000] [--runs 30] [--explain]

The events are generated in the database (INSERT ... SELECT over generate_series, in chunks, through the ordinary
INSERT path: the append-only triggers allow inserts) with a realistic spread: 200 tools, 2,000 identities, 5,000 humans,
5% denies over six reasons, 38% observed usage and 2% tool listings, gateway context (action, agent) on most, over the
last 30 days with the id rising with the recorded time. Re-running with a larger --events adds to what is there.

Requests go through django.test.Client in-process as a security user, so the time is the whole server side. The floor
is GET /api/v1/me/ (session, middleware, one small answer) measured in the same run: each page is reported as a ratio
to it as well. Target (issue 17): p95 <= 100 ms at 10 million events. Results go to bench/results/audit_pages.json.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages import ensure_database, measure, percentile, setup_django

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nhi_portal_audit_bench"
RESULTS = ROOT / "bench" / "results" / "audit_pages.json"
TARGET_P95_MS = 100.0
CHUNK = 500_000
SECURITY_USERNAME = "bench-security"
DENY_REASONS = ("no_active_grant", "resource_outside_grant", "human_not_allowed", "unknown_tool", "grant_expired",
                "scope_unknown")  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_AUDIT_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--events", type=int, default=2_000_000, help="Access events to hold (default 2,000,000).")
    parser.add_argument("--entries", type=int, default=200_000, help="Audit entries to hold (default 200,000).")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest query.")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--verify-minutes", type=int, default=0,
        help="Also seal this many minutes of traffic at --rate (from the unsealed backlog) and time sealing and the "
        "incremental verification of each minute.",
    )  # fmt: skip
    parser.add_argument("--rate", type=int, default=1000, help="Events per second a minute of traffic holds.")
    return parser.parse_args(argv)


def _count(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # ids are dense here: max is the count, at once
        return cursor.fetchone()[0]


def seed(events: int, entries: int) -> None:
    """Add access events and audit entries up to the sizes asked for, set-based, in chunks of CHUNK rows."""
    from django.db import connection

    have = _count("inventory_accessevent")
    with connection.cursor() as cursor:
        # The new rows' recorded times run from the newest row there (or 30 days ago) to now, so that the time keeps
        # rising with the id across runs, as it does in production.
        cursor.execute(
            "SELECT COALESCE(MAX(recorded_at), now() - interval '30 days'), now() FROM inventory_accessevent"
        )
        start, end = cursor.fetchone()
        first, span = have, max((end - start).total_seconds(), 1.0)
        # On PostgreSQL each month gets its own partition, as the retention job would have made it (not the default).
        from inventory.audit.partitions import ensure_months

        ensure_months(start.date(), end.date())
        added = have < events
        while have < events:
            n = min(CHUNK, events - have)
            started = time.perf_counter()
            # g runs over global positions, so the recorded time rises with the id across chunks.
            cursor.execute(
                f"""
                INSERT INTO inventory_accessevent (occurred_at, recorded_at, kind, source, request_id, tool_ref,
                    identity_ref, on_behalf_of_ref, scope_ref, resource, decision, reason, agent, action)
                SELECT t - interval '150 milliseconds', t,
                       CASE WHEN mod(g, 50) = 0 THEN 'list' WHEN mod(g, 100) < 38 THEN 'observed' ELSE 'decision' END,
                       'gw-' || mod(g, 4),
                       CASE WHEN mod(g, 100) < 38 OR mod(g, 50) = 0 THEN '' ELSE 'req-' || g END,
                       'tool-' || mod(g * 7, 200), 'svc-' || mod(g * 13, 2000), 'user-' || mod(g * 17, 5000),
                       'kb:read', 'space:ENG/' || mod(g, 97),
                       CASE WHEN mod(g, 20) = 3 THEN 'deny' ELSE 'allow' END,
                       CASE WHEN mod(g, 20) = 3 THEN (ARRAY{list(DENY_REASONS)})[1 + mod(g / 20, 6)] ELSE 'allowed' END,
                       CASE WHEN mod(g, 10) < 3 THEN 'agent-' || mod(g, 100) END,
                       CASE WHEN mod(g, 10) < 7 THEN 'mcp_tool_' || mod(g, 50) END
                FROM (SELECT g, %(start)s + make_interval(secs => %(span)s * (g - %(first)s)::float / %(total)s) AS t
                      FROM generate_series(%(lo)s, %(hi)s) AS g) AS s
                """,
                {"lo": have + 1, "hi": have + n, "start": start, "span": span, "first": first, "total": events - first},
            )
            have += n
            print(f"  events: {have:,} ({n / (time.perf_counter() - started):,.0f} rows/s)", file=sys.stderr)
        have = _count("inventory_auditentry")
        if have < entries:
            added = True
            cursor.execute(
                """
                INSERT INTO inventory_auditentry (created_at, actor_label, action, object_type, object_id, object_repr,
                    before, after, comment)
                SELECT now() - make_interval(secs => 86400.0 * 30 * (%(hi)s - g) / %(hi)s), 'user-' || mod(g, 500),
                       (ARRAY['tool.updated', 'grant.revoked', 'request.filed', 'request.approved'])[1 + mod(g, 4)],
                       'inventory.aitool', mod(g, 10000)::text, 'Tool ' || mod(g, 10000), NULL, '{"n": 1}'::jsonb, ''
                FROM generate_series(%(lo)s, %(hi)s) AS g
                """,
                {"lo": have + 1, "hi": entries},
            )
        if added:
            # Autocommit (no transaction here), as VACUUM needs: fresh statistics and visibility map, as in production.
            cursor.execute("VACUUM ANALYZE inventory_accessevent")
            cursor.execute("VACUUM ANALYZE inventory_auditentry")


def pages(first_id: int, last_id: int) -> list[tuple[str, str]]:
    from django.utils import timezone

    day = (timezone.now() - timezone.timedelta(days=10)).replace(microsecond=0)
    middle = (first_id + last_id) // 2
    return [
        ("floor: GET /api/v1/me/", "/api/v1/me/"),
        ("audit: newest", "/audit/"),
        ("audit: deep page (before=middle id)", f"/audit/?before={middle}"),
        ("audit: tool", "/audit/?tool=tool-42"),
        ("audit: identity", "/audit/?identity=svc-1234"),
        ("audit: human", "/audit/?human=user-777"),
        ("audit: decision=deny", "/audit/?decision=deny"),
        ("audit: decision=allow", "/audit/?decision=allow"),
        ("audit: reason", "/audit/?reason=grant_expired"),
        ("audit: kind=list", "/audit/?kind=list"),
        ("audit: action", "/audit/?action=mcp_tool_7"),
        ("audit: agent", "/audit/?agent=agent-5"),
        ("audit: tool + deny", "/audit/?tool=tool-42&decision=deny"),
        ("audit: one day, 10 days ago", f"/audit/?since={day:%Y-%m-%dT%H:%M:%S}&until={day + timezone.timedelta(days=1):%Y-%m-%dT%H:%M:%S}"),  # noqa: E501
        ("audit: tool, deep page", f"/audit/?tool=tool-42&before={middle}"),
        ("changes: newest", "/audit/changes/"),
        ("changes: action prefix", "/audit/changes/?action=grant."),
        ("API verify (latest verdict)", "/api/v1/audit/verify/"),
        ("API export 1,000 lines", "/api/v1/events/export/?limit=1000"),
    ]  # fmt: skip


def security_user():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from nhi_portal import roles

    user, _ = get_user_model().objects.get_or_create(username=SECURITY_USERNAME, defaults={"is_active": True})
    user.groups.add(Group.objects.get(name=roles.SECURITY))
    return user


def seal_some() -> None:
    """Seal a first stretch of each stream, so that the export has sealed rows to serve (MAX_BATCH rows a stream)."""
    from inventory.audit.sealing import STREAMS, anchor_pending, seal

    for stream in STREAMS:
        seal(stream)
    anchor_pending()


def verify_per_minute(minutes: int, rate: int) -> list[dict]:
    """Seal `rate * 60` events at a time (the backlog, oldest first: what the seal job does each minute at that rate),
    then run an incremental verification over what was just sealed; time both. The grace period is moot: the
    backlog is older than it."""
    from inventory.audit import runs
    from inventory.audit.sealing import MAX_BATCH, anchor_pending, seal

    out = []
    for minute in range(1, minutes + 1):
        started = time.perf_counter()
        sealed = 0
        while sealed < rate * 60:
            batch = seal("events")
            if batch is None:
                break
            sealed += batch.entry_count
            if batch.entry_count < MAX_BATCH:
                break
        anchor_pending()  # as the seal job does after each run: the digests out of the database, and a watch
        seal_s = time.perf_counter() - started
        started = time.perf_counter()
        run, result = runs.verification_now(kind="incremental", requested_by="bench")
        verify_s = time.perf_counter() - started
        out.append({"minute": minute, "events_sealed": sealed, "seal_s": round(seal_s, 2),
                    "verify_s": round(verify_s, 2), "batches_verified": run.batches_done,
                    "ok": result.ok, "problem": result.problem})  # fmt: skip
        print(f"  minute {minute}: sealed {sealed:,} in {seal_s:.2f} s ({sealed / seal_s:,.0f}/s), "
              f"incremental verify of {run.batches_done} batches in {verify_s:.2f} s", file=sys.stderr)  # fmt: skip
    return out


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url)
    # Its own anchor: the batches sealed here are this database's, and must not meet the dev anchor's (or write to it).
    os.environ["AUDIT_ANCHOR_PATH"] = str(ROOT / "bench" / "results" / "audit-pages-anchor.jsonl")
    setup_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", interactive=False, verbosity=0)
    seed(args.events, args.entries)
    from inventory.models import AuditBatch

    if not AuditBatch.objects.exists():
        seal_some()
    client = Client()
    client.force_login(security_user())
    first_id, last_id = 1, _count("inventory_accessevent")
    results = []
    floor_p95 = None
    for label, url in pages(first_id, last_id):
        got = measure(client, url, runs=args.runs, warmup=args.warmup)
        p95 = percentile(got.times, 0.95)
        floor_p95 = floor_p95 or p95
        worst = max(got.slowest_run, key=lambda query: float(query["time"]), default={"sql": "", "time": "0"})
        results.append({
            "page": label, "url": url, "p50_ms": round(statistics.median(got.times), 1), "p95_ms": round(p95, 1),
            "max_ms": round(max(got.times), 1), "queries": max(got.queries),
            "ratio_to_floor_p95": round(p95 / floor_p95, 2),
            "slowest_query_ms": round(float(worst["time"]) * 1000, 1), "slowest_query": worst["sql"],
        })  # fmt: skip
    print(
        f"\naccess events: {last_id:,}   audit entries: {_count('inventory_auditentry'):,}   runs per page: {args.runs}"
    )
    print(f"{'page':<38} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'queries':>7} {'p95/floor':>9}")
    for row in results:
        flag = "" if row["p95_ms"] <= TARGET_P95_MS else "  > target"
        print(f"{row['page']:<38} {row['p50_ms']:>7} {row['p95_ms']:>7} {row['max_ms']:>7} {row['queries']:>7} "
              f"{row['ratio_to_floor_p95']:>9}{flag}")  # fmt: skip
    if args.explain and connection.vendor == "postgresql":
        for row in results:
            if row["slowest_query"].lstrip().upper().startswith(("SELECT", "WITH")):
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {row['slowest_query']}")
                    plan = "\n".join(line for (line,) in cursor.fetchall())
                print(f"\n== {row['page']} ({row['slowest_query_ms']} ms)\n{row['slowest_query']}\n{plan}")
    per_minute = verify_per_minute(args.verify_minutes, args.rate) if args.verify_minutes else []
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "at": datetime.now(UTC).isoformat(), "events": last_id, "entries": _count("inventory_auditentry"),
        "cpus": os.cpu_count(), "load": os.getloadavg(), "target_p95_ms": TARGET_P95_MS, "results": results,
        "verify_per_minute": per_minute,
    }, indent=2))  # fmt: skip
    return 0 if all(row["p95_ms"] <= TARGET_P95_MS for row in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
