"""The MCP gateway's cost, in one run: tools/call direct to the sample upstream, the same through an SDK-only
pass-through proxy (the floor: no human, no portal, no usage), the same through the gateway, and the portal's
authorize alone, each from one sequential client, after a warm-up.

    .venv/bin/python bench/gateway.py [--database-url postgres://postgres@127.0.0.1:5432/nhi_gateway_bench]
                                      [--calls 2000] [--rounds 4] [--workers 2]

The portal runs under gunicorn with production settings on PostgreSQL; the sample upstream, the pass-through, the
gateway and the client are separate processes, as in a deployment (all on this machine's two cores). The MCP client
is the SDK's for the three MCP paths; authorize alone is a keep-alive HTTP client posting the gateway's question.
The paths take turns in --rounds rounds, so a burst of load from elsewhere on the machine falls on all of them alike.

Prints, for each path, p50 / p95 / p99 and calls/s, and the CPU time each process spent per call (from /proc: the
gateway's, the pass-through's, the upstream's, the portal's workers'); the load average before and after; and checks
that every gateway call's decision (and its usage) was persisted. Writes bench/results/gateway.json.

Targets: the gateway adds at most authorize's p50 + 2 ms at p50 over the direct call, and its p99 is <= 20 ms. On a
machine shared with other work, the wall-clock numbers move with the load; the CPU time per call and the ratio to
the pass-through floor, measured in the same run, are the steadier evidence.

`bench/gateway.py passthrough --config FILE` serves the floor by itself (the bench starts it).
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
    parser.add_argument("--rounds", type=int, default=4, help="Turns the paths take (default 4).")
    parser.add_argument("--warmup", type=int, default=200, help="Unmeasured calls per path before the first round.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes for the portal.")
    # Threaded workers keep the gateway's connection to the portal open between calls; sync workers (--threads 1)
    # close it after every answer, and each call then also pays a TCP connect (measured on this machine: about
    # 1.3 ms more gateway CPU per call, and the portal's accept on top). The README recommends threads for a portal
    # that gateways front; authorize alone is measured on the same portal, so the comparison holds either way.
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker (1: sync workers).")
    parser.add_argument(
        "--usage-flush-ms", type=int, default=None, help="The gateway's [usage] flush_ms (default: its own)."
    )
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


TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def _family(pid: int) -> list[int]:
    """The process and its children (gunicorn's workers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
    return [pid, *children]


class Meter:
    """CPU time per process group over one phase: each group's share of the work, per call."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self.totals = {path: dict.fromkeys(groups, 0.0) for path in PATHS}
        self.calls = dict.fromkeys(PATHS, 0)

    def __call__(self, path: str, calls: int):
        meter = self

        class Phase:
            def __enter__(self):
                self.before = {name: _cpu(pids) for name, pids in meter.groups.items()}
                self.client = time.process_time()

            def __exit__(self, *exc):
                for name, pids in meter.groups.items():
                    meter.totals[path][name] += _cpu(pids) - self.before[name]
                meter.totals[path]["client"] += time.process_time() - self.client
                meter.calls[path] += calls

        return Phase()

    def per_call_ms(self) -> dict[str, dict[str, float]]:
        return {
            path: {name: seconds * 1000 / max(1, self.calls[path]) for name, seconds in groups.items()}
            for path, groups in self.totals.items()
        }


PATHS = ("direct", "floor", "gateway", "authorize")
QUESTION = {"tool": "docs-mcp", "identity": "svc-docs-reader", "on_behalf_of": "alice",
            "scope": "confluence:content:read", "resource": "space:ENG", "action": "search_docs"}  # fmt: skip


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


async def _mcp_session(stack, url: str, headers: dict):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)))
    client = await stack.enter_async_context(Client(streamable_http_client(url, http_client=http), cache=None))
    await client.list_tools()
    return client


async def _mcp_calls(client, calls: int, samples: list[float]) -> tuple[float, int]:
    errors = 0
    started = time.perf_counter()
    for _ in range(calls):
        t0 = time.perf_counter()
        result = await client.call_tool("search_docs", {"space": "ENG", "query": "deploy"})
        samples.append(time.perf_counter() - t0)
        errors += bool(result.is_error)
    return time.perf_counter() - started, errors


def _authorize_calls(http, calls: int, samples: list[float], tag: str) -> tuple[float, int]:
    denies = 0
    started = time.perf_counter()
    for n in range(calls):
        t0 = time.perf_counter()
        answer = http.post("/api/v1/authorize/", json={**QUESTION, "request_id": f"b-{tag}-{n}"}).json()
        samples.append(time.perf_counter() - t0)
        denies += answer["decision"] != "allow"
    return time.perf_counter() - started, denies


async def _run(args, urls: dict, base: str, token: str, meter: Meter) -> tuple[dict, dict]:
    """The four paths in turns; returns their summaries and the gateway's persisted decisions and usage."""
    import contextlib

    import httpx2

    from inventory.models import AccessEvent

    headers = {"X-Forwarded-User": "alice"}
    gateway_decisions = AccessEvent.objects.filter(kind="decision", action="search_docs", source="bench-mcp-gateway")
    usage = AccessEvent.objects.filter(kind="observed", source="bench-mcp-gateway")
    persisted = {"decisions": 0, "usage_before": usage.count()}
    samples = {path: [] for path in PATHS}
    seconds, errors = dict.fromkeys(PATHS, 0.0), dict.fromkeys(PATHS, 0)
    async with contextlib.AsyncExitStack() as stack:
        clients = {path: await _mcp_session(stack, urls[path], headers) for path in ("direct", "floor", "gateway")}
        http = stack.enter_context(
            httpx2.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=10)
        )
        for path, client in clients.items():  # warm-up, unmeasured
            before = gateway_decisions.count()
            await _mcp_calls(client, args.warmup, [])
            if path == "gateway":
                persisted["decisions"] += gateway_decisions.count() - before
        _authorize_calls(http, args.warmup, [], f"warm-{time.time()}")
        per_round = max(1, args.calls // args.rounds)
        for round_ in range(args.rounds):
            for path, client in clients.items():
                before = gateway_decisions.count()
                with meter(path, per_round):
                    spent, failed = await _mcp_calls(client, per_round, samples[path])
                if path == "gateway":
                    persisted["decisions"] += gateway_decisions.count() - before
                seconds[path] += spent
                errors[path] += failed
            with meter("authorize", per_round):
                spent, denied = _authorize_calls(http, per_round, samples["authorize"], f"{time.time()}-{round_}")
            seconds["authorize"] += spent
            errors["authorize"] += denied
    summaries = {path: {**_summary(samples[path], seconds[path]), "errors": errors[path]} for path in PATHS}
    return summaries, persisted


def serve_passthrough(config_path: str) -> None:
    """The floor: the gateway's SDK server and its upstream connection, forwarding every call with no human, no
    portal question and no usage report, under the same uvicorn and transport settings as the gateway. Bench only:
    the shipped gateway has no such mode."""
    import contextlib

    import anyio
    import mcp_types as types
    import uvicorn
    from mcp.server.lowlevel import Server

    from gateway.config import load
    from gateway.server import _transport_security
    from gateway.upstreams import UpstreamPool

    config = load(config_path)
    upstream = config.upstreams[0]
    pool = UpstreamPool(config.upstreams)

    def input_schema(name):
        tool = pool.known(upstream, name)
        return tool.input_schema if tool is not None else None

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=await pool.tools(upstream))

    async def call_tool(ctx, params):
        return await pool.call(upstream, params.name, params.arguments or {})

    server = Server("passthrough", get_tool_input_schema=input_schema, on_list_tools=list_tools,
                    on_call_tool=call_tool)  # fmt: skip
    app = server.streamable_http_app(
        stateless_http=True, json_response=True, host=config.host, transport_security=_transport_security(config)
    )
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_):
        async with anyio.create_task_group() as tasks:
            await pool.start(tasks)
            try:
                async with inner(app_):
                    yield
            finally:
                tasks.cancel_scope.cancel()

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["passthrough"]:
        serve_passthrough(argv[argv.index("--config") + 1])
        return 0
    args = parse_args(argv)
    ensure_database(args.database_url)
    # The bench counts persisted decisions between its async phases, on its own (idle) connection.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    setup_django(args.database_url)
    token = prepare()
    from tests.gateway.processes import Process, start_gateway, start_sample

    load_before = os.getloadavg()
    port = free_port()
    portal = start_gunicorn(args, port)
    sample, sample_url = start_sample()
    gateway_port, floor_port = free_port(), free_port()
    config = (ROOT / "gateway" / "examples" / "docs-mcp.toml").read_text()
    config = config.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}").replace(
        "http://127.0.0.1:9001", sample_url
    )
    usage = f"\n[usage]\nflush_ms = {args.usage_flush_ms}\n" if args.usage_flush_ms else ""
    gateway_config = config.replace("port = 8790", f"port = {gateway_port}").replace(
        "\n[[upstream]]", usage + "\n[[upstream]]", 1
    )
    gateway = start_gateway(gateway_config, token, gateway_port)
    floor_config = Path(os.environ.get("TMPDIR", "/tmp")) / f"nhi-gateway-floor-{os.getpid()}.toml"
    floor_config.write_text(config.replace("port = 8790", f"port = {floor_port}"))
    floor = Process([sys.executable, str(Path(__file__).resolve()), "passthrough", "--config", str(floor_config)],
                    port=floor_port, env={"NHI_GATEWAY_TOKEN": "unused-by-the-floor"})  # fmt: skip
    urls = {"direct": f"{sample_url}/mcp", "floor": f"http://127.0.0.1:{floor_port}/mcp",
            "gateway": f"http://127.0.0.1:{gateway_port}/mcp"}  # fmt: skip
    meter = Meter({"upstream": [sample.proc.pid], "floor": [floor.proc.pid], "gateway": [gateway.proc.pid],
                   "portal": _family(portal.pid)})  # fmt: skip
    for totals in meter.totals.values():
        totals["client"] = 0.0
    try:
        stats, persisted = asyncio.run(_run(args, urls, f"http://127.0.0.1:{port}", token, meter))
        from inventory.models import AccessEvent

        # Usage is reported in the background: wait for the last flush (the example's interval, and a margin).
        gateway_calls = args.warmup + stats["gateway"]["calls"]
        usage = AccessEvent.objects.filter(kind="observed", source="bench-mcp-gateway")
        deadline = time.monotonic() + 10
        while usage.count() - persisted["usage_before"] < gateway_calls and time.monotonic() < deadline:
            time.sleep(0.2)
        used = usage.count() - persisted["usage_before"]
    finally:
        gateway.stop()
        floor.stop()
        floor_config.unlink(missing_ok=True)
        sample.stop()
        os.killpg(portal.pid, signal.SIGTERM)
        portal.wait(timeout=20)
    load_after = os.getloadavg()

    direct, through, alone, passthrough = stats["direct"], stats["gateway"], stats["authorize"], stats["floor"]
    added = through["p50_ms"] - direct["p50_ms"]
    cpu = meter.per_call_ms()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "portal": f"gunicorn {args.workers} worker(s) x {args.threads} thread(s), production settings, "
        f"{args.database_url.rsplit('/', 1)[-1]}",
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rounds": args.rounds,
        **stats,
        "cpu_ms_per_call": cpu,
        "gateway_added_p50_ms": added,
        "floor_added_p50_ms": passthrough["p50_ms"] - direct["p50_ms"],
        "gateway_over_floor_p50_ms": through["p50_ms"] - passthrough["p50_ms"],
        "gateway_cpu_over_floor_cpu": cpu["gateway"]["gateway"] / max(1e-9, cpu["floor"]["floor"]),
        "decisions_persisted": persisted["decisions"],
        "usage_events_persisted": used,
    }
    targets = {
        "gateway adds <= authorize p50 + 2 ms at p50": added <= alone["p50_ms"] + 2,
        "gateway p99 <= 20 ms": through["p99_ms"] <= 20,
        "every gateway call's decision persisted": persisted["decisions"] == gateway_calls and through["errors"] == 0,
        "every gateway call's usage reported": used == gateway_calls,
    }
    report["targets"] = targets
    print(f"\nportal: {report['portal']}")
    print(f"load average before {_load(load_before)}, after {_load(load_after)} ({os.cpu_count()} cores)")
    print(f"{'path':<34}{'calls/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = (("tools/call direct to upstream", direct), ("tools/call through pass-through", passthrough),
            ("tools/call through the gateway", through), ("POST /authorize/ alone", alone))  # fmt: skip
    for label, row in rows:
        print(
            f"{label:<34}{row['calls_per_s']:>9.0f}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}"
            f"{row['p99_ms']:>9.2f}{row['max_ms']:>9.1f}"
        )
    print(f"\nCPU ms per call{'':<19}" + "".join(f"{name:>9}" for name in ("client", *meter.groups)))
    for label, path in zip((r[0] for r in rows), ("direct", "floor", "gateway", "authorize"), strict=True):
        print(f"{label:<34}" + "".join(f"{cpu[path][name]:>9.2f}" for name in ("client", *meter.groups)))
    print(
        f"\ngateway adds {added:.2f} ms at p50 over direct (authorize alone: {alone['p50_ms']:.2f} ms; the SDK-only "
        f"pass-through adds {report['floor_added_p50_ms']:.2f} ms); over the pass-through: "
        f"{report['gateway_over_floor_p50_ms']:.2f} ms"
    )
    print(
        f"gateway process CPU per call {cpu['gateway']['gateway']:.2f} ms vs the pass-through's "
        f"{cpu['floor']['floor']:.2f} ms ({report['gateway_cpu_over_floor_cpu']:.2f}x)"
    )
    print(f"decisions persisted: {persisted['decisions']}; usage events: {used} (of {gateway_calls} gateway calls)")
    for name, ok in targets.items():
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"written to {args.output}")
    return 0


def _load(values) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
