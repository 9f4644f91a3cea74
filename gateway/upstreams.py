"""The upstream MCP servers, each reached over streamable HTTP or stdio with its own credentials (headers or
environment from the gateway's environment), which never reach the gateway's clients."""

import contextlib

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from .config import Upstream


class UpstreamPool:
    def __init__(self, upstreams: tuple[Upstream, ...]):
        self.upstreams = upstreams
        self.clients: dict[str, Client] = {}
        # Each upstream's tool definitions as last listed: their schemas, never an authorization answer.
        self.definitions: dict[str, dict[str, types.Tool]] = {}

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        for upstream in self.upstreams:
            self.clients[upstream.name] = await stack.enter_async_context(_client(upstream, stack))
            await self.tools(upstream)

    async def tools(self, upstream: Upstream) -> list[types.Tool]:
        result = await self.clients[upstream.name].list_tools()
        self.definitions[upstream.name] = {tool.name: tool for tool in result.tools}
        return list(result.tools)

    def known(self, upstream: Upstream, tool: str) -> types.Tool | None:
        return self.definitions.get(upstream.name, {}).get(tool)

    async def call(self, upstream: Upstream, tool: str, arguments: dict) -> types.CallToolResult:
        return await self.clients[upstream.name].call_tool(tool, arguments)


def _client(upstream: Upstream, stack: contextlib.AsyncExitStack) -> Client:
    # No response cache: a listing must reflect the upstream as it is, and the gateway asks the portal anyway.
    if upstream.url:
        http = httpx2.AsyncClient(headers=upstream.headers, timeout=httpx2.Timeout(30.0, read=300.0))
        stack.push_async_callback(http.aclose)
        transport = streamable_http_client(upstream.url, http_client=http)
        return Client(transport, cache=None)
    command, *args = upstream.command
    return Client(StdioServerParameters(command=command, args=args, env=upstream.env or None), cache=None)
