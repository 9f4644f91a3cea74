"""Soak: authorize at the machine's sustained rate for minutes, with a Celery worker and beat sealing and verifying.

    .venv/bin/python bench/soak.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_portal_soak]
                                   [--minutes 10] [--connections 2] [--workers 2]

gunicorn serves POST /api/v1/authorize/ (bench/authorize.py's request mix, each call with its own request id) and wrk
drives it flat out for --minutes; `celery worker -B` runs beat's schedule meanwhile: sealing every minute, incremental
verification every five, the SIEM push (a no-op without SIEM_PUSH_URL). Every 5 s this process samples the sealing
lag (the oldest unsealed entry's age) and how many events are sealed. At the end it reports the decisions per second,
the events sealed per second, the largest sealing lag (target: at most 90 s throughout), the incremental verification
time per minute of traffic, and the audit page's p95 as a security user. Results: bench/results/soak.json.
CELERY_BROKER_URL must name a Redis the worker can use.

Retention at volume (issue 17), with `--month-events N` (10,000,000 for the issue's numbers) on a fresh database:
before the traffic, N events are written into last month (its own partition, in the database, set-based), sealed and
verified (which sets the incremental checkpoint), and the month is archived by the retention code (written to the
storage, read back and verified) and verified offline again from the file (`verify_archive`, the seal key and the
anchor only). The traffic then runs with those N events in the table, so the audit page's p95 at the end is taken at
N events and more; last, the month's partition is detached and dropped through the retention path, and an
incremental verification shows that what remains still verifies. `--phase prepare` does only the first part (results:
bench/results/soak-month.json), `--phase soak` the traffic and the drop (reading that file), `--phase all` both.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.authorize import free_port, prepare, start_gunicorn  # noqa: E402
from bench.pages import ensure_database, measure, percentile  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nhi_portal_soak"
RESULTS = ROOT / "bench" / "results" / "soak.json"
TARGET_LAG_S = 90.0
SEAL_KEY = "bench-only-audit-seal-key"  # what bench/authorize.py's gunicorn seals nothing with, and the worker uses
ANCHOR = Path(tempfile.gettempdir()) / "nhi-bench-audit-anchor.jsonl"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_SOAK_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--month-events", type=int, default=0, help="Events in last month, archived then dropped.")
    parser.add_argument("--phase", choices=("prepare", "soak", "all"), default="all")
    return parser.parse_args(argv)


def setup(url: str) -> None:
    # The worker, gunicorn and this process must agree on the seal key and the anchor.
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="nhi_portal.settings.test", AUDIT_SEAL_KEY=SEAL_KEY,
                      AUDIT_ANCHOR_PATH=str(ANCHOR), ALLOWED_HOSTS="testserver", LOG_LEVEL="WARNING")  # fmt: skip
    import django

    django.setup()


def seed_small() -> None:
    """A modest estate (the soak measures the audit path, not the inventory's size), once."""
    from django.core.management import call_command

    from inventory.models import AITool

    call_command("migrate", interactive=False, verbosity=0)
    if not AITool.objects.exists():
        call_command("seed_scale", tools=1_000, identities=10_000, credentials=20_000, grants=30_000)


def start_worker(url: str) -> subprocess.Popen:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "nhi_portal.settings.production",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
        "CREDENTIAL_FINGERPRINT_KEY": "bench-only-fingerprint-key",
        "AUDIT_SEAL_KEY": SEAL_KEY,
        "AUDIT_ANCHOR_PATH": str(ANCHOR),
        "DATABASE_URL": url,
        "LOG_LEVEL": "WARNING",
    }
    command = [str(ROOT / ".venv" / "bin" / "celery"), "-A", "nhi_portal", "worker", "-B", "--concurrency", "1",
               "--loglevel", "warning", "--schedule", str(Path(tempfile.gettempdir()) / "nhi-soak-beat")]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def drive(port: int, token: str, bodies: list[str], seconds: float, connections: int) -> dict:
    """Authorize flat out from `connections` threads, each over one kept-alive connection, every call with its own
    request id (wrk, as bench/authorize.py uses, is not needed here: the soak is about the audit path's lag)."""
    import http.client
    import threading

    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    run = int(time.time())

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        mine, count = [], 0
        while time.monotonic() < deadline:
            count += 1
            body = bodies[(count * connections + index) % len(bodies)].replace("__RID__", f"soak-{run}-{index}-{count}")
            started = time.perf_counter()
            try:
                connection.request("POST", "/api/v1/authorize/", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
            mine.append((time.perf_counter() - started) * 1000)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return {
        "requests": len(latencies), "errors": errors[0], "rps": len(latencies) / elapsed,
        "p50_ms": round(percentile(latencies, 0.5), 2), "p99_ms": round(percentile(latencies, 0.99), 2),
    }  # fmt: skip


def sample() -> dict:
    from django.db.models import Sum

    from inventory.audit.sealing import sealing_lag
    from inventory.models import AuditBatch

    sealed = AuditBatch.objects.filter(stream="events").aggregate(n=Sum("entry_count"))["n"] or 0
    return {"t": time.monotonic(), "lag_s": sealing_lag() or 0.0, "sealed": sealed}


def stop(process: subprocess.Popen) -> None:
    """The process group this script started (gunicorn and its workers, the worker and beat)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def audit_page_p95(runs: int = 30) -> float:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="soak-security")
    user.groups.add(Group.objects.get_or_create(name="security")[0])
    client = Client()
    client.force_login(user)
    return percentile(measure(client, "/audit/", runs=runs, warmup=3).times, 0.95)


def _last_month():
    from datetime import date, timedelta

    today = datetime.now(UTC).date()
    return (date(today.year, today.month, 1) - timedelta(days=1)).replace(day=1)


def seed_month(events: int) -> dict:
    """`events` access events spread over last month, in its own partition, ids rising with the time recorded; the
    column mix of bench/audit_pages.py. Only into a database whose events all come after (ids must rise with time)."""
    from django.db import connection

    from bench.audit_pages import DENY_REASONS
    from inventory.audit import partitions
    from inventory.audit.retention import _month_bounds

    month = _last_month()
    partitions.ensure_months(month, month)
    start, end = _month_bounds(month)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM inventory_accessevent WHERE recorded_at >= %s", [start])
        if cursor.fetchone()[0]:
            raise SystemExit("--month-events needs a database with no events from last month on: use a fresh one")
        span = (end - start).total_seconds() - 3600  # the last hour of the month stays empty
        for lo in range(1, events + 1, 500_000):
            hi = min(lo + 499_999, events)
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
                FROM (SELECT g, %(start)s + make_interval(secs => %(span)s * g::float / %(total)s) AS t
                      FROM generate_series(%(lo)s, %(hi)s) AS g) AS s
                """,
                {"lo": lo, "hi": hi, "start": start, "span": span, "total": events},
            )
            print(f"  last month: {hi:,} events", file=sys.stderr, flush=True)
        cursor.execute("VACUUM ANALYZE inventory_accessevent")
    return {"month": f"{month:%Y-%m}", "events": events, "seed_s": round(time.perf_counter() - started, 1)}


def prepare_month(args) -> dict:
    """Seed last month, seal and verify it, take the audit page's p95 at that volume, archive the month and verify
    the archive offline. Returns the numbers (also written to bench/results/soak-month.json)."""
    from django.db import connection

    from inventory.audit import retention, runs
    from inventory.audit.anchor import get_anchor
    from inventory.audit.sealing import anchor_pending, seal

    # A fresh database seals a fresh chain: an anchor left by an earlier run (of another database) would name batches
    # this one never had, and the archive would rightly not verify against it.
    ANCHOR.unlink(missing_ok=True)
    report = seed_month(args.month_events)
    started = time.perf_counter()
    sealed = 0
    while (batch := seal("events")) is not None:
        sealed += batch.entry_count
    seal("audit")
    anchor_pending()
    report["seal_s"] = round(time.perf_counter() - started, 1)
    report["sealed_per_s"] = round(sealed / (time.perf_counter() - started), 1)
    started = time.perf_counter()
    _run, result = runs.verification_now(kind="incremental", requested_by="soak")
    report.update(first_verify_s=round(time.perf_counter() - started, 1), first_verify_ok=result.ok)
    report["audit_page_p95_ms_at_month"] = round(audit_page_p95(), 1)
    started = time.perf_counter()
    archive = retention.archive_month(stream="events", month=_last_month())
    # The anchor record of the archive is written after commit; autocommit here, so it already is.
    report.update(archive_s=round(time.perf_counter() - started, 1), archive_id=archive.pk, archive_rows=archive.rows,
                  archive_bytes=archive.size, archive_name=archive.name)  # fmt: skip
    started = time.perf_counter()
    with retention.archive_storage().open(archive.name, "rb") as handle, get_anchor().path.open() as anchor_file:
        offline = retention.verify_archive(handle, (json.loads(line) for line in anchor_file if line.strip()))
    report.update(offline_verify_s=round(time.perf_counter() - started, 1), offline_verify=offline.as_dict())
    connection.close()
    print(json.dumps(report, indent=2), flush=True)
    return report


def drop_month(month_report: dict) -> dict:
    """Detach and drop last month's partition through the retention path, then verify what remains."""
    from inventory.audit import partitions, runs

    name = f"{partitions.PARENT}_y{month_report['month'].replace('-', 'm')}"
    part = next(p for p in partitions.partitions() if p.name == name)
    started = time.perf_counter()
    dropped = partitions.drop_partition(part)
    drop_s = time.perf_counter() - started
    started = time.perf_counter()
    _run, result = runs.verification_now(kind="incremental", requested_by="soak")
    return {"dropped": dropped.table_name, "dropped_rows": dropped.rows, "drop_s": round(drop_s, 2),
            "verify_after_drop_ok": result.ok, "verify_after_drop_s": round(time.perf_counter() - started, 2),
            "verify_after_drop_problem": result.problem}  # fmt: skip


MONTH_RESULTS = ROOT / "bench" / "results" / "soak-month.json"


def main(argv=None) -> int:
    args = parse_args(argv or sys.argv[1:])
    ensure_database(args.database_url)
    setup(args.database_url)
    seed_small()
    month_report = None
    if args.month_events and args.phase in ("prepare", "all"):
        month_report = prepare_month(args)
        MONTH_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        MONTH_RESULTS.write_text(json.dumps(month_report, indent=2))
        if args.phase == "prepare":
            return 0 if month_report["offline_verify"]["ok"] else 1
    elif args.month_events:
        month_report = json.loads(MONTH_RESULTS.read_text())
    token, bodies = prepare(args)
    from django.db import connection

    from inventory.audit.sealing import seal_all
    from inventory.models import AccessEvent, AuditVerification

    # What an earlier phase left unsealed (the archive's audit entry, say) would read as lag until the worker's first
    # run: sealed here first, so the samples measure the traffic.
    seal_all()
    port = free_port()
    server = start_gunicorn(args, port)
    worker = start_worker(args.database_url)
    first_event = AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    verifications_before = AuditVerification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    seconds = int(args.minutes * 60)
    samples = [sample()]
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            load = pool.submit(drive, port, token, bodies, seconds, args.connections)
            while not load.done():
                time.sleep(args.sample_seconds)
                samples.append(sample())
                connection.close()  # a fresh snapshot each time, and no idle transaction held
            stats = load.result()
        # Let the worker seal what the last minute wrote before counting.
        time.sleep(min(90, seconds))
        samples.append(sample())
    finally:
        stop(server)
        stop(worker)
    decided = AccessEvent.objects.filter(pk__gt=first_event).count()
    runs = list(AuditVerification.objects.filter(pk__gt=verifications_before, kind="incremental", status="done"))
    if not runs:
        # Beat runs it every five minutes; a shorter soak verifies its traffic once at the end, in this process.
        from inventory.audit.runs import verification_now

        runs = [verification_now(kind="incremental", requested_by="soak")[0]]
    verify_s = sum(run.seconds or 0 for run in runs)
    sealed = samples[-1]["sealed"] - samples[0]["sealed"]
    elapsed = samples[-1]["t"] - samples[0]["t"]
    report = {
        "at": datetime.now(UTC).isoformat(), "minutes": args.minutes, "decisions": decided,
        "decisions_per_s": round(stats["rps"], 1), "authorize_p50_ms": stats["p50_ms"],
        "authorize_p99_ms": stats["p99_ms"], "errors": stats["errors"],
        "events_sealed_per_s": round(sealed / elapsed, 1),
        "max_sealing_lag_s": round(max(s["lag_s"] for s in samples), 1),
        "median_sealing_lag_s": round(statistics.median(s["lag_s"] for s in samples), 1),
        "incremental_runs": len(runs), "incremental_verify_s_per_traffic_minute": round(verify_s / args.minutes, 2),
        "incremental_runs_ok": [run.ok for run in runs], "audit_page_p95_ms": round(audit_page_p95(), 1),
        "events_in_table": AccessEvent.objects.count(), "cpus": os.cpu_count(), "load": os.getloadavg(),
    }  # fmt: skip
    if month_report is not None:
        report["month"] = month_report
        report["month_drop"] = drop_month(month_report)
    for name, value in report.items():
        print(f"{name:>42}: {value}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({**report, "samples": samples}, indent=2))
    return 0 if report["max_sealing_lag_s"] <= TARGET_LAG_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
