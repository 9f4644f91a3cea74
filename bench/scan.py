"""Time a full detection scan at scale: per-detector time, total wall time, findings and Python memory, per size.

    .venv/bin/python bench/scan.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_portal_scanbench]
                                   [--sizes 100000,300000,1000000] [--reseed] [--repeat 1]

For each size N (credentials), the scale data is seeded with `manage.py seed_scale` (N/100 tools, N/10
identities, N credentials, 0.3 N grants), the database is ANALYZEd, and a full scan (scan_create + scan_run,
in-process) runs twice: the first opens the findings, the second sees them again. Each size is measured in a
child process of its own, so that the peak RSS it reports belongs to that size alone. Prints a table per size
and a linearity summary, and writes bench/results/scan.json. See bench/README.md.
"""

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import code_version, ensure_database, percentile, setup_django  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nhi_portal_scanbench"
DEFAULT_SIZES = (100_000, 300_000, 1_000_000)
RESULTS = ROOT / "bench" / "results" / "scan.json"
FULL_SIZE = 1_000_000
TARGET_SCAN_S = 15.0  # at the full size, each of the two scans
TARGET_MEMORY_MB = 300.0  # peak RSS of the Python process at the full size
LINEAR_TOLERANCE = 1.5  # time per 100k credentials may grow by this factor from the smallest to the largest size
SETTINGS = "nhi_portal.settings.test"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("SCAN_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size.replace("_", "")) for size in text.split(",") if size.strip()],
        default=list(DEFAULT_SIZES),
        help="Credential counts, comma-separated (default 100000,300000,1000000).",
    )
    parser.add_argument(
        "--reseed", action="store_true", help="Seed even when the database already holds exactly this size."
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="Pairs of scans per size (findings emptied before each); medians shown."
    )
    parser.add_argument("--strict", action="store_true", help="Exit 1 when the full size misses a target.")
    parser.add_argument("--output", type=Path, default=RESULTS)
    # Internal: measure one size in this process and write the result as JSON to this file.
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def shape(credentials: int) -> dict[str, int]:
    """The seed sizes for N credentials: the full estate scaled down proportionally."""
    return {
        "tools": credentials // 100,
        "identities": credentials // 10,
        "credentials": credentials,
        "grants": credentials * 3 // 10,
    }


# ---------------------------------------------------------------------------------------------- parent process


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": SETTINGS, "LOG_LEVEL": "WARNING"}


def _manage(url: str, *arguments: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *arguments], cwd=ROOT, env=_env(url), check=True,
                   stdout=sys.stderr)  # fmt: skip


def current_scale(url: str) -> dict[str, int]:
    import psycopg

    tables = {"tools": "inventory_aitool", "identities": "inventory_serviceidentity",
              "credentials": "inventory_credential", "grants": "inventory_scopegrant"}  # fmt: skip
    with psycopg.connect(urlparse(url).geturl()) as conn:
        return {name: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for name, table in tables.items()}


def prepare(url: str, size: int, *, reseed: bool) -> float | None:
    """Seed the size unless the database already holds exactly it. Returns the seeding time, None if reused."""
    wanted = shape(size)
    if not reseed and current_scale(url) == wanted:
        print(f"  {size:,} credentials: reusing the seeded data (--reseed to seed again)", file=sys.stderr)
        return None
    print(f"  {size:,} credentials: seeding {wanted}", file=sys.stderr)
    started = time.perf_counter()
    _manage(url, "seed_scale", "--reset", *(f"--{name}={count}" for name, count in wanted.items()))
    return round(time.perf_counter() - started, 1)


def measure_in_child(args: argparse.Namespace, size: int) -> dict:
    """One size in a fresh interpreter: its ru_maxrss is then this size's peak, not the largest so far."""
    out = args.output.parent / f".scan-child-{os.getpid()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--database-url", args.database_url,
               "--repeat", str(args.repeat), "--child", str(out)]  # fmt: skip
    try:
        subprocess.run(command, cwd=ROOT, check=True)
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------- child process


def _pg(cursor, sql: str, params=None):
    cursor.execute(sql, params)
    return cursor.fetchall()


def reset_findings() -> None:
    """Start from no findings, detector runs or scans, so the first scan opens everything it sees."""
    from django.db import connection

    from inventory.models import DetectorRun, Finding, Scan

    models = (Finding, DetectorRun, Scan)
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {tables}")
        else:
            for model in models:
                model.objects.all().delete()


def analyze() -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return round(time.perf_counter() - started, 1)


def vacuum_findings() -> None:
    """What autovacuum does in the hours between two daily scans: statistics for the rows the first scan wrote."""
    from django.db import connection

    from inventory.models import Finding

    table = connection.ops.quote_name(Finding._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {table}" if connection.vendor == "postgresql" else "ANALYZE")


def findings_size_mb() -> float | None:
    """The findings table with its indexes: what a scan writes, and how it grows when a rescan rewrites rows."""
    from django.db import connection

    from inventory.models import Finding

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        rows = _pg(cursor, "SELECT pg_total_relation_size(%s)", [Finding._meta.db_table])
    return round(rows[0][0] / 2**20, 1)


def temp_bytes() -> int | None:
    """Bytes this database has written to temporary files so far: sorts and hashes that spilled past work_mem."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        if connection.pg_version >= 150000:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        rows = _pg(cursor, "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0]) if rows else None


def rss_mb() -> float:
    """Resident set size now (Linux), to tell what the scan added from what the process held before."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def max_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def one_scan() -> dict:
    from inventory.detection.scan import scan_create, scan_run
    from inventory.models import Finding, FindingStatus

    gc.collect()
    temp_before = temp_bytes()
    rss_before = rss_mb()
    tracemalloc.start()
    tracemalloc.reset_peak()
    started, cpu_started = time.perf_counter(), time.process_time()
    scan = scan_run(scan_create().pk)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    temp_after = temp_bytes()
    counts = scan.counts
    errors = {key: result["error"] for key, result in counts.items() if "error" in result}
    if errors:
        raise SystemExit(f"Scan {scan.pk} had failing detectors: {errors}")
    return {
        "scan_id": scan.pk,
        "wall_s": round(wall, 2),
        "python_cpu_s": round(cpu, 2),
        "detectors_ms": sum(result["ms"] for result in counts.values()),
        "opened": sum(result["opened"] for result in counts.values()),
        "still_open": sum(result["still_open"] for result in counts.values()),
        "resolved": sum(result["resolved"] for result in counts.values()),
        "unresolved_findings": Finding.objects.exclude(status=FindingStatus.RESOLVED).count(),
        "tracemalloc_peak_mb": round(traced_peak / 2**20, 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_mb(), 1),
        "max_rss_mb": round(max_rss_mb(), 1),
        "db_temp_mb": None if temp_before is None else round((temp_after - temp_before) / 2**20, 1),
        "findings_table_mb": findings_size_mb(),
        "per_detector": counts,
    }


def child(args: argparse.Namespace) -> None:
    setup_django(args.database_url)
    from django.db import connection

    from bench.pages import scale

    pairs = []
    analyze_s = None
    for _ in range(args.repeat):
        reset_findings()
        analyze_s = analyze()
        first = one_scan()
        vacuum_findings()
        second = one_scan()
        pairs.append({"first": first, "second": second})
        print(f"    scans: first {first['wall_s']} s, second {second['wall_s']} s", file=sys.stderr)
    with connection.cursor() as cursor:
        version = _pg(cursor, "SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        settings = {}
        if connection.vendor == "postgresql":
            names = ("shared_buffers", "work_mem", "effective_cache_size", "jit", "max_parallel_workers_per_gather",
                     "random_page_cost")  # fmt: skip
            settings = dict(_pg(cursor, "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                                [list(names)]))  # fmt: skip
    document = {
        "scale": scale(),
        "analyze_s": analyze_s,
        "pairs": pairs,
        "max_rss_mb": round(max_rss_mb(), 1),
        "database": {"vendor": connection.vendor, "version": version[0][0], "settings": settings},
    }
    args.child.write_text(json.dumps(document, indent=2))


# --------------------------------------------------------------------------------------------------- reporting


def median_of(pairs: list[dict], which: str, pick) -> float:
    """The nearest-rank median over the repeats: a value that was actually observed."""
    return percentile([pick(pair[which]) for pair in pairs], 0.5)


def summarise(size: int, measured: dict, seed_s: float | None) -> dict:
    pairs = measured["pairs"]
    detectors = sorted(pairs[0]["first"]["per_detector"])
    summary = {"credentials": size, "seed_s": seed_s, "scale": measured["scale"], "analyze_s": measured["analyze_s"]}
    for which in ("first", "second"):
        per_detector = {}
        for key in detectors:
            row = pairs[0][which]["per_detector"][key]
            per_detector[key] = {
                "ms": median_of(pairs, which, lambda scan, key=key: scan["per_detector"][key]["ms"]),
                **{name: row[name] for name in ("opened", "still_open", "resolved")},
            }
        summary[which] = {
            "wall_s": median_of(pairs, which, lambda scan: scan["wall_s"]),
            "python_cpu_s": median_of(pairs, which, lambda scan: scan["python_cpu_s"]),
            "per_detector": per_detector,
            **{name: pairs[0][which][name] for name in ("opened", "still_open", "resolved", "unresolved_findings")},
            "tracemalloc_peak_mb": max(pair[which]["tracemalloc_peak_mb"] for pair in pairs),
            "db_temp_mb": pairs[0][which]["db_temp_mb"],
            "findings_table_mb": pairs[0][which]["findings_table_mb"],
            "runs_wall_s": [pair[which]["wall_s"] for pair in pairs],
        }
    summary["max_rss_mb"] = measured["max_rss_mb"]
    summary["rss_before_scans_mb"] = pairs[0]["first"]["rss_before_mb"]
    return summary


def print_size(summary: dict, repeat: int) -> None:
    scale = summary["scale"]
    first, second = summary["first"], summary["second"]
    print(f"\n{summary['credentials']:,} credentials: {', '.join(f'{n:,} {name}' for name, n in scale.items())}"
          f"{f'; median of {repeat} pairs of scans' if repeat > 1 else ''}\n")  # fmt: skip
    row = "{:<24} {:>10} {:>9} {:>10} {:>10} {:>9}".format
    header = row("detector", "scan 1 ms", "opened", "scan 2 ms", "still open", "resolved")
    print(header)
    print("-" * len(header))
    for key, one in first["per_detector"].items():
        two = second["per_detector"][key]
        print(row(key, f"{one['ms']:,}", f"{one['opened']:,}", f"{two['ms']:,}", f"{two['still_open']:,}",
                  f"{two['resolved']:,}"))  # fmt: skip
    print("-" * len(header))
    print(row("sum of detectors", f"{sum(d['ms'] for d in first['per_detector'].values()):,}", f"{first['opened']:,}",
              f"{sum(d['ms'] for d in second['per_detector'].values()):,}", f"{second['still_open']:,}",
              f"{second['resolved']:,}"))  # fmt: skip
    print(row("total wall", f"{first['wall_s'] * 1000:,.0f}", "", f"{second['wall_s'] * 1000:,.0f}", "", ""))
    print(
        row("python cpu", f"{first['python_cpu_s'] * 1000:,.0f}", "", f"{second['python_cpu_s'] * 1000:,.0f}", "", "")
    )
    print(
        f"\nmemory: peak RSS {summary['max_rss_mb']:.0f} MB "
        f"(before the scans {summary['rss_before_scans_mb']:.0f} MB); "
        f"tracemalloc peak {first['tracemalloc_peak_mb']} MB / {second['tracemalloc_peak_mb']} MB (scan 1 / 2); "
        f"database temp files {first['db_temp_mb']} MB / {second['db_temp_mb']} MB"
    )
    print(
        f"findings: {first['unresolved_findings']:,} unresolved; table and indexes {first['findings_table_mb']} MB "
        f"after scan 1, {second['findings_table_mb']} MB after scan 2"
    )


def linearity(summaries: list[dict]) -> dict:
    """Seconds per 100k credentials at each size; linear cost keeps it flat."""
    rows = {}
    for summary in summaries:
        per = 100_000 / summary["credentials"]
        rows[summary["credentials"]] = {
            "first_s_per_100k": round(summary["first"]["wall_s"] * per, 2),
            "second_s_per_100k": round(summary["second"]["wall_s"] * per, 2),
            "detectors_ms_per_100k": {
                key: round(summary["first"]["per_detector"][key]["ms"] * per)
                for key in summary["first"]["per_detector"]
            },
        }
    return rows


def print_linearity(rows: dict) -> tuple[float, float] | None:
    print("\nLinearity: scan seconds per 100,000 credentials\n")
    row = "{:>12} {:>10} {:>10}".format
    print(row("credentials", "scan 1", "scan 2"))
    for size, values in rows.items():
        print(row(f"{size:,}", f"{values['first_s_per_100k']:.2f}", f"{values['second_s_per_100k']:.2f}"))
    if len(rows) < 2:
        return None
    smallest, largest = rows[min(rows)], rows[max(rows)]
    growth = (
        largest["first_s_per_100k"] / max(smallest["first_s_per_100k"], 1e-9),
        largest["second_s_per_100k"] / max(smallest["second_s_per_100k"], 1e-9),
    )
    print(f"\nper-100k cost, largest size / smallest: scan 1 x{growth[0]:.2f}, scan 2 x{growth[1]:.2f} "
          f"(linear: about x1; tolerance x{LINEAR_TOLERANCE})")  # fmt: skip
    worst = []
    for key, small in smallest["detectors_ms_per_100k"].items():
        large = largest["detectors_ms_per_100k"][key]
        if large >= 100 and large > LINEAR_TOLERANCE * max(small, 1):
            worst.append(f"{key} {small} -> {large} ms")
    if worst:
        print("detectors growing faster than linear (scan 1 ms per 100k): " + "; ".join(worst))
    return growth


def verdicts(summaries: list[dict], growth: tuple[float, float] | None) -> dict:
    full = next((s for s in summaries if s["credentials"] == FULL_SIZE), None)
    result = {}
    if full is not None:
        result["scan_s"] = max(full["first"]["wall_s"], full["second"]["wall_s"]) <= TARGET_SCAN_S
        result["memory_mb"] = full["max_rss_mb"] <= TARGET_MEMORY_MB
    if growth is not None:
        result["linear"] = max(growth) <= LINEAR_TOLERANCE
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        child(args)
        return 0
    ensure_database(args.database_url)
    _manage(args.database_url, "migrate", "--noinput", "--verbosity=0")
    summaries = []
    for size in args.sizes:
        seed_s = prepare(args.database_url, size, reseed=args.reseed)
        measured = measure_in_child(args, size)
        summary = summarise(size, measured, seed_s)
        summaries.append(summary)
        print_size(summary, args.repeat)
        database = measured["database"]
    rows = linearity(summaries)
    growth = print_linearity(rows)
    met = verdicts(summaries, growth)
    if met:
        print(f"\nTargets at {FULL_SIZE:,} credentials: each scan <= {TARGET_SCAN_S:g} s, peak RSS <= "
              f"{TARGET_MEMORY_MB:g} MB, per-100k cost within x{LINEAR_TOLERANCE}: "
              + ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in met.items()))  # fmt: skip
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "database": database,
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "repeat": args.repeat,
        "targets": {"scan_s": TARGET_SCAN_S, "memory_mb": TARGET_MEMORY_MB, "linear_tolerance": LINEAR_TOLERANCE},
        "meets_targets": met,
        "sizes": summaries,
        "linearity": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 1 if args.strict and not all(met.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
