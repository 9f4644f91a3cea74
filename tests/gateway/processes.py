"""Real processes for the gateway tests and the benchmark: the sample upstream, the gateway, and an MCP client."""

import asyncio
import concurrent.futures
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = str(Path(sys.executable).with_name("nhi-mcp-gateway"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process whose output goes to a file, shown when it fails to come up."""

    def __init__(
        self, args: list[str], *, port: int, env: dict | None = None, timeout: float = 20, host: str = "127.0.0.1"
    ):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="nhi-proc-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        output = self.output()
        self.stop()
        raise RuntimeError(f"{args} did not listen on port {port}:\n{output}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def start_sample(port: int | None = None) -> tuple[Process, str]:
    port = port or free_port()
    args = [sys.executable, "-m", "gateway.sample_server", "--port", str(port)]
    return Process(args, port=port), f"http://127.0.0.1:{port}"


def start_gateway(config: str, token: str, port: int, host: str = "127.0.0.1") -> Process:
    path = Path(tempfile.mkdtemp(prefix="nhi-gw-")) / "gateway.toml"
    path.write_text(config, encoding="utf-8")
    args = [GATEWAY, "--config", str(path), "--log-level", "warning"]
    return Process(args, port=port, env={"NHI_GATEWAY_TOKEN": token}, host=host)


def calls(sample_url: str) -> dict:
    return httpx2.get(f"{sample_url}/calls", timeout=5).json()


def run_async(coroutine_function):
    """Run `coroutine_function()` on an event loop of its own, in a thread of its own: the browser tests' Playwright
    keeps a loop running in the main thread for the whole session, and asyncio.run refuses to start beside it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine_function()).result()


def run_client(url: str, headers: dict, steps):
    """Connect a real MCP client (the SDK's) and run `steps(client)`; returns what it returns. Its event loop lives
    and ends in another thread (`run_async`), so the test's ORM calls before and after see no running loop."""

    async def main():
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0))
        async with http, Client(streamable_http_client(url, http_client=http), cache=None) as client:
            return await steps(client)

    return run_async(main)
