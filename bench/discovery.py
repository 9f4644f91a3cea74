"""Time discovery imports at scale: an AWS credential report of N users and a GCP key listing of N/2 keys, first
import and re-import of the same file (which must write nothing), with peak memory, per size.

    .venv/bin/python bench/discovery.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_h2]
                                        [--sizes 10000,100000]

Each size runs in a child process of its own, so the peak RSS it reports is that size's alone. The files are
generated in the providers' own formats (the 22-column credential report; `gcloud ... keys list --format=json`),
then imported with the same service the API and `import_source` call. Before each size the bench removes the
identities its own earlier runs discovered (provider aws / gcp, account `bench`), nothing else. The re-import
counts every INSERT, UPDATE and DELETE the database is sent. Targets at 100k: first import <= 20 s, re-import
<= 5 s with zero writes, peak RSS <= 300 MB.
"""

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import ensure_database, setup_django  # noqa: E402

DEFAULT_DATABASE_URL = os.environ.get("DISCOVERY_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nhi_h2")
ACCOUNT = "bench"
TARGETS = {"first_s": 20.0, "reimport_s": 5.0, "rss_mb": 300.0}
HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,"
    "mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
    "access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,"
    "access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)


def aws_report(users: int) -> bytes:
    """A credential report: most users with one key, one in ten with two, one in five with a console password."""
    base = datetime(2023, 1, 1, tzinfo=UTC)
    # Written into one buffer rather than a list of lines: the bench's own peak memory counts in the result.
    out = io.StringIO()
    out.write(HEADER + "\n")
    for n in range(users):
        created = (base + timedelta(minutes=n)).isoformat()
        used = (base + timedelta(days=300, minutes=n)).isoformat()
        second = n % 10 == 0
        password = n % 5 == 0
        out.write(
            f"svc-{n},arn:aws:iam::123456789012:user/svc-{n},{created},{'true' if password else 'false'},"
            f"{used if password else 'N/A'},N/A,N/A,false,true,{created},{used if n % 3 else 'N/A'},"
            f"{'us-east-1' if n % 3 else 'N/A'},{'s3' if n % 3 else 'N/A'},{'true' if second else 'false'},"
            f"{created if second else 'N/A'},N/A,N/A,N/A,false,N/A,false,N/A\n"
        )
    return out.getvalue().encode()


def gcp_keys(keys: int) -> bytes:
    """Key listings of keys/2 service accounts with two user-managed keys each."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    out = io.StringIO()
    out.write("[")
    for n in range(keys):
        row = {
            "name": f"projects/bench/serviceAccounts/sa-{n // 2}@bench.iam.gserviceaccount.com/keys/{n:040x}",
            "keyAlgorithm": "KEY_ALG_RSA_2048",
            "keyOrigin": "GOOGLE_PROVIDED",
            "keyType": "USER_MANAGED",
            "validAfterTime": (base + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validBeforeTime": "9999-12-31T23:59:59Z",
        }
        out.write(("," if n else "") + json.dumps(row))
    out.write("]")
    return out.getvalue().encode()


def clean() -> None:
    from inventory.models import ServiceIdentity, SourceObject, SourceRun

    bench = list(
        SourceObject.objects.filter(account=ACCOUNT, object_type="identity").values_list("identity_id", flat=True)
    )
    # In chunks: Django's delete collector sends every related id as a parameter (PostgreSQL allows 65,535).
    for start in range(0, len(bench), 2000):
        ServiceIdentity.objects.filter(pk__in=bench[start : start + 2000]).delete()
    SourceRun.objects.filter(account=ACCOUNT).delete()
    # Reclaim what the delete left behind and refresh the planner's statistics, so that each size's first import
    # meets tables as a real first import would, not ones full of dead rows from the previous size.
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("inventory_serviceidentity", "inventory_credential", "inventory_sourceobject"):
                cursor.execute(f"VACUUM ANALYZE {table}")


def rows_written() -> int:
    """Rows inserted, updated or deleted in this database's tables so far, as the server counts them: COPY, which
    Django's execute wrappers never see, included. This backend's pending counts are flushed first (PostgreSQL 15+)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    with connection.cursor() as cursor:  # the flush happens between statements; a fresh snapshot then reads it
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables")
        return int(cursor.fetchone()[0])


def measure(kind: str, raw: bytes, actor) -> dict:
    from django.db import connection

    from inventory.imports.sources.sync import source_import

    start = time.perf_counter()
    first = source_import(actor=actor, kind=kind, raw=raw, account=ACCOUNT)
    first_s = time.perf_counter() - start
    writes: list[str] = []

    def count_writes(execute, sql, params, many, context):
        if sql.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "COPY"):
            writes.append(sql[:60])
        return execute(sql, params, many, context)

    before = rows_written()
    with connection.execute_wrapper(count_writes):
        start = time.perf_counter()
        again = source_import(actor=actor, kind=kind, raw=raw, account=ACCOUNT)
        reimport_s = time.perf_counter() - start
    rows = rows_written() - before
    return {
        "kind": kind,
        "bytes": len(raw),
        "first_s": round(first_s, 2),
        "created": first.created,
        "reimport_s": round(reimport_s, 2),
        "reimport_unchanged": again.unchanged,
        "reimport_writes": len(writes),
        "reimport_rows_written": rows,
    }


def child(url: str, size: int, output: Path) -> None:
    setup_django(url)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    User = get_user_model()
    actor, _ = User.objects.get_or_create(username="discovery-bench", defaults={"is_superuser": True})
    Group.objects.get_or_create(name="security")[0].user_set.add(actor)
    clean()
    results = []
    for kind, raw in (("aws-credential-report", aws_report(size)), ("gcp-service-account-keys", gcp_keys(size // 2))):
        results.append(measure(kind, raw, actor))
        del raw
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    output.write_text(json.dumps({"size": size, "rss_mb": round(rss_mb, 1), "results": results}))
    clean()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--sizes", default="10000,100000", help="AWS users per size; GCP keys are half of it.")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.database_url, args.child, args.output)
        return 0
    ensure_database(args.database_url)
    missed = False
    for size in [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]:
        out = ROOT / "var" / f"discovery-bench-{size}.json"
        out.parent.mkdir(exist_ok=True)
        command = [sys.executable, __file__, "--database-url", args.database_url, "--child", str(size)]
        subprocess.run([*command, "--output", str(out)], check=True)
        data = json.loads(out.read_text())
        print(f"\n{size:,} AWS users / {size // 2:,} GCP keys: peak RSS {data['rss_mb']} MB")
        for r in data["results"]:
            created = r["created"]
            print(
                f"  {r['kind']:<26} {r['bytes'] / 1e6:6.1f} MB  first {r['first_s']:6.2f} s "
                f"({created['identities']:,} identities, {created['credentials']:,} credentials)  "
                f"re-import {r['reimport_s']:5.2f} s, {r['reimport_writes']} write statements, "
                f"{r['reimport_rows_written']} rows written"
            )
            missed |= size >= 100_000 and (
                r["first_s"] > TARGETS["first_s"]
                or r["reimport_s"] > TARGETS["reimport_s"]
                or r["reimport_writes"]
                or r["reimport_rows_written"]
            )
        missed |= size >= 100_000 and data["rss_mb"] > TARGETS["rss_mb"]
    print("\ntargets at 100k: first <= 20 s, re-import <= 5 s with 0 writes, peak RSS <= 300 MB:", "missed" if missed
          else "met")  # fmt: skip
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
