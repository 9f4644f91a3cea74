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


def main(argv=None) -> int:
    args = parse_args(argv or sys.argv[1:])
    ensure_database(args.database_url)
    setup(args.database_url)
    seed_small()
    token, bodies = prepare(args)
    from django.db import connection

    from inventory.models import AccessEvent, AuditVerification

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
    for name, value in report.items():
        print(f"{name:>42}: {value}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({**report, "samples": samples}, indent=2))
    return 0 if report["max_sealing_lag_s"] <= TARGET_LAG_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
