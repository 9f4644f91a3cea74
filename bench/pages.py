"""Time the inventory pages at scale: server time (p50 / p95 / max) and query count per page and role.

    .venv/bin/python bench/pages.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_portal_bench]
                                    [--reseed] [--runs 50] [--explain]

Requests go through django.test.Client in-process, so the time is the whole server side (middleware,
session, view, queries, template or serializer rendering) without a network or a WSGI server in
front. Results are printed as a table and written to bench/results/pages.json. See bench/README.md.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nhi_portal_bench"
RESULTS = ROOT / "bench" / "results" / "pages.json"
TARGET_P95_MS = 100.0
TARGET_QUERIES = 10
SECURITY_USERNAME = "bench-security"
MANAGER_USERNAME = "bench-manager"

# (label, path); {tool} is a typical tool the signed-in user can see.
PAGES = (
    ("home", "/"),
    ("tool list", "/tools/"),
    ("tool list filtered+sorted", "/tools/?environment=prod&ordering=-name&search=agent"),
    ("tool detail", "/tools/{tool}/"),
    ("identity list", "/identities/"),
    ("API identities x100", "/api/v1/identities/?page_size=100"),
)


@dataclass
class Result:
    user: str
    role: str
    page: str
    url: str
    runs: int
    min_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    queries: int  # the most any run needed; a count that varies between runs is a bug in itself
    queries_min: int
    db_p50_ms: float
    cpu_p50_ms: float
    slowest_query_ms: float
    slowest_query: str = field(repr=False)

    @property
    def meets_target(self) -> bool:
        return self.p95_ms <= TARGET_P95_MS and self.queries <= TARGET_QUERIES


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--reseed", action="store_true", help="Truncate and seed again even if data is there.")
    parser.add_argument("--runs", type=int, default=50, help="Timed requests per page and user.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed requests per page and user first.")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of each page.")
    parser.add_argument("--strict", action="store_true", help="Exit 1 when a page misses a target.")
    parser.add_argument("--output", type=Path, default=RESULTS)
    for name, default in (("tools", 10_000), ("identities", 100_000), ("credentials", 1_000_000),
                          ("grants", 300_000), ("scopes", 200)):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default, help=f"Seed size (default {default:,}).")
    return parser.parse_args(argv)


def ensure_database(url: str) -> None:
    """Create the bench database on first use; it is scratch space, never the dev or test database."""
    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgres"):
        return
    import psycopg
    from psycopg import sql

    name = parsed.path.lstrip("/")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(url: str) -> None:
    # Test settings: DEBUG off, plain static storage (no manifest to build), in-memory broker.
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "nhi_portal.settings.test"
    os.environ["ALLOWED_HOSTS"] = "testserver"  # the host django.test.Client sends
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    # WhiteNoise warns that collectstatic never ran; the pages under test do not serve static files.
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()


def seed_if_needed(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    from inventory.models import AITool

    call_command("migrate", interactive=False, verbosity=0)
    if args.reseed or not AITool.objects.exists():
        sizes = {name: getattr(args, name) for name in ("tools", "identities", "credentials", "grants", "scopes")}
        call_command("seed_scale", reset=True, **sizes)


def bench_users():
    """The security reviewer (sees everything) and the active owner with the most tools."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import Count

    from nhi_portal import roles

    user_model = get_user_model()
    security, _ = user_model.objects.get_or_create(username=SECURITY_USERNAME, defaults={"is_active": True})
    security.groups.add(Group.objects.get(name=roles.SECURITY))
    owner = (
        user_model.objects.filter(is_active=True, groups__isnull=True)
        .annotate(tool_count=Count("owned_tools"))
        .order_by("-tool_count", "pk")
        .first()
    )
    manager, _ = user_model.objects.get_or_create(username=MANAGER_USERNAME, defaults={"is_active": True})
    manager.groups.add(Group.objects.get(name=roles.MANAGER))
    return [("security", security), ("owner", owner), ("manager", manager)]


def typical_tool(user) -> int:
    """The median tool by number of identities among those the user sees: neither empty nor the monster."""
    from django.db.models import Count

    from inventory.models import AITool

    tools = AITool.objects.visible_to(user).annotate(bound=Count("bindings")).order_by("bound", "pk")
    return tools.values_list("pk", flat=True)[tools.count() // 2]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    db_times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    slowest_run: list[dict] = field(default_factory=list)


def measure(client, url: str, *, runs: int, warmup: int) -> Samples:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        _check(client.get(url), url)
    samples = Samples()
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            cpu = (time.process_time() - cpu_started) * 1000
        _check(response, url)
        if not samples.times or elapsed >= max(samples.times):
            samples.slowest_run = captured.captured_queries
        samples.times.append(elapsed)
        samples.cpu_times.append(cpu)
        samples.queries.append(len(captured.captured_queries))
        samples.db_times.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
    return samples


def _check(response, url: str) -> None:
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}; the benchmark needs 200s.")


def run(args: argparse.Namespace) -> list[Result]:
    from django.test import Client

    results = []
    for role, user in bench_users():
        client = Client()
        client.force_login(user)
        tool = typical_tool(user)
        for label, path in PAGES:
            url = path.format(tool=tool)
            got = measure(client, url, runs=args.runs, warmup=args.warmup)
            worst = max(got.slowest_run, key=lambda query: float(query["time"]), default={"sql": "", "time": "0"})
            results.append(
                Result(
                    user=user.username, role=role, page=label, url=url, runs=args.runs, min_ms=round(min(got.times), 1),
                    p50_ms=round(statistics.median(got.times), 1), p95_ms=round(percentile(got.times, 0.95), 1),
                    max_ms=round(max(got.times), 1), queries=max(got.queries), queries_min=min(got.queries),
                    db_p50_ms=round(statistics.median(got.db_times), 1),
                    cpu_p50_ms=round(statistics.median(got.cpu_times), 1),
                    slowest_query_ms=round(float(worst["time"]) * 1000, 1), slowest_query=worst["sql"],
                )
            )  # fmt: skip
            print(f"  measured {role:<8} {url}", file=sys.stderr)
    return results


def explain(results: list[Result]) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        print("EXPLAIN ANALYZE needs PostgreSQL; skipped.")
        return
    for result in results:
        if not result.slowest_query.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {result.slowest_query}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\n== {result.role} {result.page}: slowest query ({result.slowest_query_ms} ms)\n")
        print(result.slowest_query, "\n")
        print(plan)


def scale() -> dict[str, int]:
    from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity

    models = {"tools": AITool, "identities": ServiceIdentity, "credentials": Credential, "grants": ScopeGrant}
    return {name: model.objects.count() for name, model in {**models, "scopes": Scope}.items()}


def code_version() -> str:
    """The commit measured, marked dirty when the working tree differs: numbers belong to a version."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
    except OSError:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if commit.returncode == 0 else "unknown"


def report(results: list[Result], args: argparse.Namespace, sizes: dict[str, int]) -> None:
    from django.db import connection

    row = "{:<9} {:<26} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}  {}".format
    header = row("user", "page", "min ms", "p50 ms", "p95 ms", "max ms", "queries", "db p50", "cpu p50", "target")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\n{', '.join(f'{n:,} {name}' for name, n in sizes.items())}; {args.runs} runs per page")
    print(f"host: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min): compare runs at a similar load\n")
    print(header)
    print("-" * len(header))
    for r in results:
        queries = str(r.queries) if r.queries == r.queries_min else f"{r.queries_min}-{r.queries}"
        verdict = "ok" if r.meets_target else "MISSED"
        print(row(r.role, r.page, r.min_ms, r.p50_ms, r.p95_ms, r.max_ms, queries, r.db_p50_ms, r.cpu_p50_ms, verdict))
    print(f"\nTargets: p95 <= {TARGET_P95_MS:g} ms and <= {TARGET_QUERIES} queries per page.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": {"vendor": connection.vendor, "version": version, "name": connection.settings_dict["NAME"]},
        "code": code_version(),
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "scale": sizes,
        "runs": args.runs,
        "warmup": args.warmup,
        "targets": {"p95_ms": TARGET_P95_MS, "queries": TARGET_QUERIES},
        "results": [{**asdict(r), "meets_target": r.meets_target} for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ensure_database(args.database_url)
    setup_django(args.database_url)
    seed_if_needed(args)
    results = run(args)
    report(results, args, scale())
    if args.explain:
        explain(results)
    return 1 if args.strict and not all(r.meets_target for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
