"""Load-test POST /api/v1/authorize/ through gunicorn on loopback, against PostgreSQL with the scale data.

    .venv/bin/python bench/authorize.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_portal_bench]
                                        [--duration 30] [--connections 2] [--workers 2] [--threads 1]

wrk (Debian package `wrk`) drives the server from a second process for --duration seconds: first the authorize
endpoint with a realistic mix (most calls allowed, some denied for an unbound identity, a scope outside the grant,
or a human the tool may not act for; every call with its own request_id), then GET /api/v1/me/, a trivial
authenticated DRF endpoint, as the framework's floor. Prints throughput and p50 / p95 / p99 latency for both,
checks that every decision was persisted, and writes bench/results/authorize.json.
Targets: p99 <= 10 ms, p50 <= 3 ms, >= 800 decisions/s, authorize p50 <= 1.5 x the floor's p50.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import DEFAULT_DATABASE_URL, ensure_database  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "authorize.json"
GATEWAY = "bench-gateway"

LUA = r"""
local counter = 0
local bodies = {}
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do table.insert(bodies, line) end
end

function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  body = string.gsub(body, "__RID__", string.format("wrk-__RUN__-%d-%d", tid, counter))
  return wrk.format("POST", nil, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("JSON{\"requests\": %d, \"seconds\": %.3f, \"errors\": %d, \"p50_ms\": %.3f, "
    .. "\"p95_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""

FLOOR_LUA = r"""
function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("JSON{\"requests\": %d, \"seconds\": %.3f, \"errors\": %d, \"p50_ms\": %.3f, "
    .. "\"p95_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--duration", type=int, default=30, help="Seconds per endpoint (default 30).")
    # One request in flight per worker: on two cores, more connections than workers only add queueing to every
    # latency (measured: 8 connections on 2 workers gave 4x the p50 and lower throughput), for both endpoints alike.
    parser.add_argument("--connections", type=int, default=2, help="Concurrent connections (default 2).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker.")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "nhi_portal.settings.test"
    import django

    django.setup()


def prepare(args) -> tuple[str, list[str]]:
    """Seed if empty, make a gateway token and a set of request bodies over real tools, identities and grants."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone
    from knox.models import AuthToken

    from inventory.models import AITool, ScopeGrant

    call_command("migrate", interactive=False, verbosity=0)
    if not AITool.objects.exists():
        print("seeding the scale data (10k tools, 100k identities, 1M credentials, 300k grants)...", flush=True)
        call_command("seed_scale", tools=10_000, identities=100_000, credentials=1_000_000, grants=300_000)
    user_model = get_user_model()
    gateway, _ = user_model.objects.get_or_create(username=GATEWAY)
    gateway.groups.add(Group.objects.get_or_create(name="gateway")[0])
    _, token = AuthToken.objects.create(user=gateway, expiry=timezone.timedelta(hours=2))

    now = timezone.now()
    grants = list(
        ScopeGrant.objects.filter(status="active", tool__isnull=False, approvals__gte=2)
        .filter(expires_at__gt=now + timezone.timedelta(hours=1))
        .select_related("identity", "scope", "tool")
        .order_by("?")[:200]
    )
    humans = list(user_model.objects.filter(is_active=True).exclude(username=GATEWAY)[:20])
    bodies = []
    for index, grant in enumerate(grants):
        grant.tool.allowed_users.add(*humans)
        grant.tool.bindings.get_or_create(identity=grant.identity)
        resource = grant.resource_constraint.replace("*", "item-1") if grant.resource_constraint else "any/thing"
        body = {
            "tool": grant.tool.slug,
            "identity": grant.identity.name,
            "on_behalf_of": humans[index % len(humans)].username,
            "scope": grant.scope.name,
            "resource": resource,
            "request_id": "__RID__",
        }
        bodies.append(json.dumps(body))
        if index % 5 == 0:  # one call in five is refused, for a different reason each time
            deny = [
                body | {"resource": "elsewhere/entirely"} if grant.resource_constraint else body | {"scope": "nope"},
                body | {"on_behalf_of": GATEWAY},
                body | {"identity": "no-such-identity"},
            ][index % 3]
            bodies.append(json.dumps(deny))
    ids = [g.identity_id for g in grants]
    print(f"prepared {len(bodies)} request bodies over {len(set(ids))} identities", flush=True)
    return token, bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(args, port: int) -> subprocess.Popen:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "nhi_portal.settings.production",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
        "CREDENTIAL_FINGERPRINT_KEY": "bench-only-fingerprint-key",
        "AUDIT_SEAL_KEY": "bench-only-audit-seal-key",
        "AUDIT_ANCHOR_PATH": str(Path(tempfile.gettempdir()) / "nhi-bench-audit-anchor.jsonl"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": args.database_url,
        "LOG_LEVEL": "WARNING",
        # Outlive both runs: a backend replaced mid-run takes the CPU it had used with it, and the per-request
        # PostgreSQL CPU below would come out too low (it read 0.01 ms for the floor with the default 60 s).
        "DB_CONN_MAX_AGE": "600",
    }
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"), "nhi_portal.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers), "--threads", str(args.threads),
        "--worker-class", "gthread" if args.threads > 1 else "sync", "--log-level", "warning",
        "--keep-alive", "30",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def run_wrk(url: str, token: str, script: str, duration: int, connections: int, extra: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", handle.name]
    command += ["-H", f"Authorization: Token {token}", "-H", "Content-Type: application/json", url, *extra]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("JSON"))
    stats = json.loads(line[4:])
    stats["rps"] = stats["requests"] / stats["seconds"]
    return stats


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (from /proc; Linux only); 0 if it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def server_pids(server: subprocess.Popen) -> dict[str, list[int]]:
    """The gunicorn workers, and the PostgreSQL backends serving them (this database, not this process)."""
    from django.db import connection

    workers = [int(pid) for pid in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    return {"gunicorn": workers, "postgres": backends}


def measured(server: subprocess.Popen, requests_of, *args) -> dict:
    """Run one wrk load and add the server's CPU per request, split into Python (gunicorn) and PostgreSQL.

    Latency percentiles move with whatever else the host runs; CPU per request barely does. Processes are listed
    again at the end: a worker's connection can be replaced mid-run (CONN_MAX_AGE), and a new backend's CPU counts
    from zero."""
    before = {pid: cpu_seconds(pid) for group in server_pids(server).values() for pid in group}
    stats = requests_of(*args)
    for name, group in server_pids(server).items():
        used = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in group)
        stats[f"{name}_cpu_ms_per_request"] = used * 1000 / max(stats["requests"], 1)
    return stats


def round_trips(samples: int = 2000) -> dict:
    """Median cost, from this process, of a bare round trip and of a one-row insert committed durably: the part of
    any recorded decision that no code in the portal can remove (the commit waits for the WAL to reach disk)."""
    from django.db import connection

    def median_us(sql: str) -> float:
        times = []
        with connection.cursor() as cursor:
            for _ in range(samples):
                started = time.perf_counter()
                cursor.execute(sql)
                times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2] * 1e6

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, at timestamptz)")
    try:
        return {
            "select_1_us": median_us("SELECT 1"),
            "durable_insert_us": median_us("INSERT INTO bench_commit_probe (at) VALUES (now())"),
        }
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_commit_probe")


def warm(url: str, token: str, bodies_file: str) -> None:
    subprocess.run(
        ["wrk", "-t", "1", "-c", "2", "-d", "3s", "-s", bodies_file, "-H", f"Authorization: Token {token}", url],
        capture_output=True,
        check=False,
    )


def main(argv=None) -> int:
    args = parse_args(argv or sys.argv[1:])
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench-authorize does it)")
    ensure_database(args.database_url)
    setup_django(args.database_url)
    token, bodies = prepare(args)
    from inventory.models import AccessEvent

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        handle.write("\n".join(bodies) + "\n")
        bodies_file = handle.name
    run_id = int(time.time())
    script = LUA.replace("__RUN__", str(run_id))
    probe = round_trips()
    port = free_port()
    server = start_gunicorn(args, port)
    try:
        base = f"http://127.0.0.1:{port}"
        warm(f"{base}/api/v1/me/", token, _write(FLOOR_LUA))
        before = AccessEvent.objects.count()
        authorize_stats = measured(
            server, run_wrk, f"{base}/api/v1/authorize/", token, script, args.duration, args.connections,
            ["--", bodies_file],
        )  # fmt: skip
        persisted = AccessEvent.objects.count() - before
        floor_stats = measured(
            server, run_wrk, f"{base}/api/v1/me/", token, FLOOR_LUA, args.duration, args.connections, []
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)

    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": args.database_url.rsplit("/", 1)[-1],
        "server": f"gunicorn {args.workers} worker(s) x {args.threads} thread(s), production settings",
        "client": f"wrk, 1 thread, {args.connections} connections, {args.duration}s per endpoint",
        "authorize": authorize_stats,
        "floor_me": floor_stats,
        "decisions_persisted": persisted,
        "p50_ratio_to_floor": authorize_stats["p50_ms"] / floor_stats["p50_ms"],
        "database_round_trips": probe,
    }
    targets = {
        "p99 <= 10 ms": authorize_stats["p99_ms"] <= 10,
        "p50 <= 3 ms": authorize_stats["p50_ms"] <= 3,
        ">= 800 decisions/s": authorize_stats["rps"] >= 800,
        "p50 <= 1.5 x floor": report["p50_ratio_to_floor"] <= 1.5,
        # wrk stops counting at the deadline while the last requests still finish, so persisted may exceed it.
        "every decision persisted": persisted >= authorize_stats["requests"] and authorize_stats["errors"] == 0,
    }
    report["targets"] = targets
    print()
    header = f"{'endpoint':<22}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    print(header + f"{'py cpu':>9}{'pg cpu':>9}")
    for label, stats in (("POST /authorize/", authorize_stats), ("GET /me/ (floor)", floor_stats)):
        print(
            f"{label:<22}{stats['rps']:>9.0f}{stats['p50_ms']:>9.2f}{stats['p95_ms']:>9.2f}"
            f"{stats['p99_ms']:>9.2f}{stats['max_ms']:>9.1f}{stats['errors']:>8}"
            f"{stats['gunicorn_cpu_ms_per_request']:>9.2f}{stats['postgres_cpu_ms_per_request']:>9.2f}"
        )
    print("py cpu / pg cpu: CPU ms per request in the gunicorn workers / in their PostgreSQL backends")
    print(f"decisions persisted: {persisted} of {authorize_stats['requests']} requests")
    print(f"authorize p50 / floor p50: {report['p50_ratio_to_floor']:.2f}")
    print(
        f"one round trip (SELECT 1): {probe['select_1_us']:.0f} us; one durably committed one-row insert: "
        f"{probe['durable_insert_us']:.0f} us (medians, one client, before the load)"
    )
    for name, ok in targets.items():
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"written to {args.output.relative_to(ROOT)}")
    return 0


def _write(script: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    return handle.name


if __name__ == "__main__":
    raise SystemExit(main())
