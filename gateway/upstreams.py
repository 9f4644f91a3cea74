"""The upstream MCP servers, each reached over streamable HTTP or stdio with its own credentials (headers or
environment from the gateway's environment), which never reach the gateway's clients.

Each upstream's connection is owned by a task of its own that reconnects, with backoff, when it breaks (a stdio
server that crashed, an HTTP server that went away): one client's odd input must not take a tool away from everyone
until the gateway restarts.
"""

import contextlib
import logging

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from .config import PLACEHOLDER, ConfigError, Upstream

CONNECT_TIMEOUT = 15.0
BROKEN = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError, OSError)
log = logging.getLogger("nhi_gateway")


class UpstreamUnavailable(Exception):
    pass


class Connection:
    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.client: Client | None = None
        self.ready = anyio.Event()
        self.broken = anyio.Event()
        # Each tool's definition as last listed: its schemas, never an authorization answer.
        self.definitions: dict[str, types.Tool] = {}
        self.started = False
        # Set when the upstream, after start, changed so that a map no longer fits it: calls through it fail closed.
        self.problem = ""

    async def run(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        delay = 0.2
        while True:
            try:
                async with contextlib.AsyncExitStack() as stack:
                    self.client = await stack.enter_async_context(_client(self.upstream, stack))
                    await self.list()
                    self.ready.set()
                    if not self.started:
                        self.started = True
                        task_status.started()
                    delay = 0.2
                    await self.broken.wait()
            except Exception as error:  # whatever broke the connection, it is made again
                if (problem := _config_error(error)) is not None:
                    raise problem from None
                log.warning("upstream %s: connection lost (%s); reconnecting", self.upstream.name, type(error).__name__)
            self.client, self.ready, self.broken = None, anyio.Event(), anyio.Event()
            await anyio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def list(self) -> list[types.Tool]:
        result = await self.client.list_tools()
        self.definitions = {tool.name: tool for tool in result.tools}
        try:
            _check_templates(self.upstream, self.definitions)
            self.problem = ""
        except ConfigError as error:
            if not self.started:
                raise  # at start: the gateway does not start, and says which key
            log.error("upstream %s no longer fits the config: %s; its calls are refused", self.upstream.name, error)
            self.problem = str(error)
        return list(result.tools)

    async def session(self) -> Client:
        with anyio.move_on_after(CONNECT_TIMEOUT):
            await self.ready.wait()
        if self.client is None or self.problem:
            raise UpstreamUnavailable(self.upstream.name)
        return self.client


class UpstreamPool:
    def __init__(self, upstreams: tuple[Upstream, ...]):
        self.upstreams = upstreams
        self.connections = {u.name: Connection(u) for u in upstreams}

    async def start(self, tasks) -> None:
        """Connect to every upstream (each within CONNECT_TIMEOUT) before serving; they stay connected, or reconnect,
        in `tasks`."""
        for connection in self.connections.values():
            with anyio.fail_after(CONNECT_TIMEOUT):
                await tasks.start(connection.run)

    async def tools(self, upstream: Upstream) -> list[types.Tool]:
        connection = self.connections[upstream.name]
        await connection.session()
        try:
            return await connection.list()
        except BROKEN as error:
            connection.broken.set()
            raise UpstreamUnavailable(upstream.name) from error

    def known(self, upstream: Upstream, tool: str) -> types.Tool | None:
        return self.connections[upstream.name].definitions.get(tool)

    async def call(self, upstream: Upstream, tool: str, arguments: dict) -> types.CallToolResult:
        connection = self.connections[upstream.name]
        client = await connection.session()
        try:
            return await client.call_tool(tool, arguments)
        except MCPError as error:
            if "connection closed" in error.message.lower():
                connection.broken.set()
            raise
        except BROKEN as error:
            connection.broken.set()
            raise UpstreamUnavailable(upstream.name) from error


def _config_error(error: BaseException) -> ConfigError | None:
    """The ConfigError in `error`, also when the client's task group wrapped it in an exception group."""
    if isinstance(error, ConfigError):
        return error
    for inner in getattr(error, "exceptions", ()):
        if (found := _config_error(inner)) is not None:
            return found
    return None


def _check_templates(upstream: Upstream, definitions: dict[str, types.Tool]) -> None:
    """A placeholder must name an argument the upstream's tool requires, as text or a whole number: a template over
    an argument the tool ignores would let the client choose the resource asked about apart from the one acted on."""
    for index, mapping in enumerate(upstream.maps):
        tool = definitions.get(mapping.tool)
        if tool is None:
            log.warning("upstream %s offers no tool %s (mapped; calls to it will fail)", upstream.name, mapping.tool)
            continue
        schema = tool.input_schema or {}
        properties, required = schema.get("properties") or {}, set(schema.get("required") or ())
        for name in PLACEHOLDER.findall(mapping.resource):
            kind = (properties.get(name) or {}).get("type")
            if name not in required or kind not in ("string", "integer"):
                raise ConfigError(
                    f"upstream[{upstream.name}].map[{index}].resource",
                    f"{{{name}}} is not a required text or whole-number argument of {mapping.tool}",
                )


def _client(upstream: Upstream, stack: contextlib.AsyncExitStack) -> Client:
    # No response cache: a listing must reflect the upstream as it is, and the gateway asks the portal anyway.
    if upstream.url:
        http = httpx2.AsyncClient(headers=upstream.headers, timeout=httpx2.Timeout(30.0, read=300.0))
        stack.push_async_callback(http.aclose)
        transport = streamable_http_client(upstream.url, http_client=http)
        return Client(transport, cache=None)
    command, *args = upstream.command
    return Client(StdioServerParameters(command=command, args=args, env=upstream.env or None), cache=None)
