"""The MCP gateway's cost, in one run: tools/call direct to the sample upstream, the same through the gateway, and
the portal's authorize alone, each from one sequential client, after a warm-up.

    .venv/bin/python bench/gateway.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_gateway_bench]
                                      [--calls 2000] [--workers 2]

The portal runs under gunicorn with production settings on PostgreSQL; the sample upstream, the gateway and the
client are separate processes, as in a deployment (all on this machine's two cores). The MCP client is the SDK's, for
both the direct and the gateway runs; authorize alone is a keep-alive HTTP client posting the gateway's question.
Prints p50 / p99 and calls/s for each, checks that every gateway call's decision (and its usage) was persisted, and
writes bench/results/gateway.json. Targets: the gateway adds at most authorize's p50 + 2 ms at p50, p99 <= 20 ms.
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.authorize import free_port, setup_django, start_gunicorn  # noqa: E402
from bench.pages import ensure_database  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gateway.json"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/nhi_gateway_bench"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_GATEWAY_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--calls", type=int, default=2000, help="Measured calls per path (default 2000).")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes for the portal.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def prepare() -> str:
    """The walkthrough's estate (docs-mcp, svc-docs-reader, an approved grant on space:ENG for alice), and a gateway
    token limited to docs-mcp."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone
    from knox.models import AuthToken

    from approvals.models import GatewayToolLimit
    from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity, ToolIdentity

    call_command("migrate", interactive=False, verbosity=0)
    users = get_user_model()
    owner, _ = users.objects.get_or_create(username="bench-owner")
    alice, _ = users.objects.get_or_create(username="alice")
    gateway, _ = users.objects.get_or_create(username="bench-mcp-gateway")
    gateway.groups.add(Group.objects.get_or_create(name="gateway")[0])
    tool, _ = AITool.objects.get_or_create(
        slug="docs-mcp", defaults={"name": "Docs MCP", "owner": owner, "environment": "staging", "status": "active"}
    )
    tool.allowed_users.add(alice)
    identity, _ = ServiceIdentity.objects.get_or_create(name="svc-docs-reader", defaults={"owner": owner})
    ToolIdentity.objects.get_or_create(tool=tool, identity=identity)
    if not identity.credentials.exists():
        Credential.objects.create(
            identity=identity,
            fingerprint="bench" + "0" * 59,
            last4="0000",
            created_at=timezone.now(),
            expires_at=timezone.now() + timedelta(days=90),
        )
    scope, _ = Scope.objects.get_or_create(name="confluence:content:read", defaults={"provider": "atlassian"})
    # Reused between runs (decisions reference it): an active, approved, unexpired grant on the ENG space.
    ScopeGrant.objects.update_or_create(
        identity=identity, scope=scope, tool=tool, resource_constraint="space:ENG",
        defaults={"status": "active", "approvals": 1, "granted_at": timezone.now(),
                  "expires_at": timezone.now() + timedelta(days=30)},
    )  # fmt: skip
    instance, token = AuthToken.objects.create(user=gateway, expiry=timedelta(hours=2))
    GatewayToolLimit.objects.create(token=instance).tools.set([tool])
    return token


def _summary(samples: list[float], seconds: float) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "calls": len(samples),
        "calls_per_s": len(samples) / seconds,
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "max_ms": ordered[-1] * 1000,
    }


async def _mcp_calls(url: str, headers: dict, calls: int, warmup: int) -> dict:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0))
    async with http, Client(streamable_http_client(url, http_client=http), cache=None) as client:
        await client.list_tools()
        for _ in range(warmup):
            await client.call_tool("search_docs", {"space": "ENG", "query": "deploy"})
        samples, errors = [], 0
        started = time.perf_counter()
        for _ in range(calls):
            t0 = time.perf_counter()
            result = await client.call_tool("search_docs", {"space": "ENG", "query": "deploy"})
            samples.append(time.perf_counter() - t0)
            errors += bool(result.is_error)
        return {**_summary(samples, time.perf_counter() - started), "errors": errors}


def _authorize_calls(base: str, token: str, calls: int, warmup: int) -> dict:
    import httpx2

    question = {"tool": "docs-mcp", "identity": "svc-docs-reader", "on_behalf_of": "alice",
                "scope": "confluence:content:read", "resource": "space:ENG", "action": "search_docs"}  # fmt: skip
    with httpx2.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=10) as http:
        for n in range(warmup):
            http.post("/api/v1/authorize/", json={**question, "request_id": f"warm-{time.time()}-{n}"})
        samples, denies = [], 0
        started = time.perf_counter()
        for n in range(calls):
            t0 = time.perf_counter()
            answer = http.post("/api/v1/authorize/", json={**question, "request_id": f"b-{started}-{n}"}).json()
            samples.append(time.perf_counter() - t0)
            denies += answer["decision"] != "allow"
        return {**_summary(samples, time.perf_counter() - started), "errors": denies}


def main(argv=None) -> int:
    args = parse_args(argv or sys.argv[1:])
    ensure_database(args.database_url)
    setup_django(args.database_url)
    token = prepare()
    from inventory.models import AccessEvent
    from tests.gateway.processes import start_gateway, start_sample

    port = free_port()
    portal = start_gunicorn(args, port)
    sample, sample_url = start_sample()
    gateway_port = free_port()
    config = (ROOT / "gateway" / "examples" / "docs-mcp.toml").read_text()
    config = config.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    config = config.replace("port = 8790", f"port = {gateway_port}").replace("http://127.0.0.1:9001", sample_url)
    gateway = start_gateway(config, token, gateway_port)
    headers = {"X-Forwarded-User": "alice"}
    try:
        direct = asyncio.run(_mcp_calls(f"{sample_url}/mcp", headers, args.calls, args.warmup))
        before = AccessEvent.objects.filter(kind="decision", action="search_docs", source="bench-mcp-gateway").count()
        used_before = AccessEvent.objects.filter(kind="observed", source="bench-mcp-gateway").count()
        through = asyncio.run(_mcp_calls(f"http://127.0.0.1:{gateway_port}/mcp", headers, args.calls, args.warmup))
        alone = _authorize_calls(f"http://127.0.0.1:{port}", token, args.calls, args.warmup)
        time.sleep(1.0)  # the gateway reports usage in the background, every 200 ms
        decided = AccessEvent.objects.filter(kind="decision", action="search_docs", source="bench-mcp-gateway")
        decisions = decided.count() - before - args.calls  # authorize-alone questions carry the same action
        used = AccessEvent.objects.filter(kind="observed", source="bench-mcp-gateway").count() - used_before
    finally:
        gateway.stop()
        sample.stop()
        os.killpg(portal.pid, signal.SIGTERM)
        portal.wait(timeout=20)

    added = through["p50_ms"] - direct["p50_ms"]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "portal": f"gunicorn {args.workers} worker(s), production settings, {args.database_url.rsplit('/', 1)[-1]}",
        "direct": direct,
        "gateway": through,
        "authorize_alone": alone,
        "gateway_added_p50_ms": added,
        "decisions_persisted": decisions,
        "usage_events_persisted": used,
    }
    targets = {
        "gateway adds <= authorize p50 + 2 ms at p50": added <= alone["p50_ms"] + 2,
        "gateway p99 <= 20 ms": through["p99_ms"] <= 20,
        "every gateway call's decision persisted": decisions >= args.calls + args.warmup and through["errors"] == 0,
        "every gateway call's usage reported": used >= args.calls + args.warmup,
    }
    report["targets"] = targets
    print(f"\n{'path':<34}{'calls/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = (("tools/call direct to upstream", direct), ("tools/call through the gateway", through),
            ("POST /authorize/ alone", alone))  # fmt: skip
    for label, stats in rows:
        print(
            f"{label:<34}{stats['calls_per_s']:>9.0f}{stats['p50_ms']:>9.2f}{stats['p95_ms']:>9.2f}"
            f"{stats['p99_ms']:>9.2f}{stats['max_ms']:>9.1f}"
        )
    print(f"gateway adds {added:.2f} ms at p50 (authorize alone: {alone['p50_ms']:.2f} ms)")
    print(f"decisions persisted: {decisions}; usage events: {used} (of {args.calls + args.warmup} gateway calls)")
    for name, ok in targets.items():
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"written to {args.output.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
