"""The MCP server clients connect to (streamable HTTP at /mcp), in front of the upstream MCP servers.

`tools/call`: the mapped scope and resource are asked about (POST /authorize/) before anything reaches the
upstream; only an `allow` is forwarded, and what ran is reported to /events/ linked to that decision.
`tools/list`: only the tools the human may call now (POST /authorize/batch/). The gateway keeps no state between
requests (stateless streamable HTTP, no cached answers), so replicas behind any load balancer are interchangeable.
"""

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from .config import Config, ToolMap, Upstream, loopback
from .humans import Identifier, NoHuman
from .portal import UNAVAILABLE, PortalClient, PortalUnavailable
from .resources import NotCanonical, Unresolved, resource_for
from .upstreams import UpstreamPool, UpstreamUnavailable

DENIED = -32003  # JSON-RPC server-defined error: the portal did not allow the call
UPSTREAM_FAILED = -32004  # the call was allowed, and the upstream could not run it
log = logging.getLogger("nhi_gateway")


@dataclass(frozen=True)
class Route:
    upstream: Upstream
    mapping: ToolMap | None
    tool: str  # the name on the upstream


class Gateway:
    def __init__(self, config: Config, pool: UpstreamPool, portal: PortalClient, identifier: Identifier):
        self.config, self.pool, self.portal, self.identifier = config, pool, portal, identifier

    def exposed(self, upstream: Upstream, tool: str) -> str:
        return f"{upstream.name}_{tool}" if self.config.prefixed else tool

    def input_schema(self, name: str):
        """The exposed tool's argument schema, from the upstream's last listing. The SDK asks for it on every
        tools/call (to check Mcp-Param headers); without it, it would run a whole tools/list, portal question
        included, before each call."""
        route = self.route(name)
        if route is None:
            return None
        tool = self.pool.known(route.upstream, route.tool)
        return tool.input_schema if tool is not None else None

    def route(self, name: str) -> Route | None:
        for upstream in self.config.upstreams:
            prefix = f"{upstream.name}_" if self.config.prefixed else ""
            if name.startswith(prefix):
                tool = name[len(prefix) :]
                return Route(upstream, upstream.mapping(tool), tool)
        return None

    # tools/list ---------------------------------------------------------------------------------------------------

    async def list_tools(self, ctx, params) -> types.ListToolsResult:
        try:
            caller = await self.identifier.caller(_headers(ctx))
        except NoHuman as error:
            raise MCPError(DENIED, f"denied: no_human ({error})", {"decision": "deny", "reason": "no_human"}) from None
        shown: list[types.Tool] = []
        for upstream in self.config.upstreams:
            try:
                tools = await self.pool.tools(upstream)
            except UpstreamUnavailable:
                log.warning("tools/list: upstream %s unavailable; its tools are not listed", upstream.name)
                continue
            mapped = [(t, upstream.mapping(t.name)) for t in tools]
            mapped = [(t, m) for t, m in mapped if m is not None]  # an unmapped tool is never callable: not listed
            if not mapped:
                continue
            question = {
                "tool": upstream.tool,
                "identity": upstream.identity,
                "on_behalf_of": caller.human,
                "agent": caller.agent,
                "action": "tools/list",
                "checks": [{"scope": m.scope, "any_resource": True} for _, m in mapped],
            }
            try:
                answer = await self.portal.listing(question)
            except PortalUnavailable as error:
                log.warning("tools/list for %s: portal unavailable (%s); listing nothing", upstream.name, error)
                continue
            allowed = [a.get("decision") == "allow" for a in answer["answers"]]
            if len(allowed) != len(mapped):
                continue
            for (tool, _), ok in zip(mapped, allowed, strict=True):
                if ok:
                    shown.append(tool.model_copy(update={"name": self.exposed(upstream, tool.name)}))
        return types.ListToolsResult(tools=shown)

    # tools/call ---------------------------------------------------------------------------------------------------

    async def call_tool(self, ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        started = time.monotonic()
        try:
            caller = await self.identifier.caller(_headers(ctx))
        except NoHuman as error:
            raise _denied("no_human", None, str(error)) from None
        route = self.route(params.name)
        if route is None or route.mapping is None:
            # Denied here, without asking: there is no scope to ask about, and the upstream never sees the call.
            raise _denied("tool_not_mapped", None, f"{params.name[:100]} is not mapped to a portal scope")
        try:
            resource = resource_for(route.mapping, params.arguments)
        except Unresolved as error:
            raise _denied("resource_unresolved", None, f"argument {error} is needed for the resource") from None
        except NotCanonical as error:
            raise _denied("resource_not_canonical", None, f"argument {error} is not in plain form") from None
        question = {
            "tool": route.upstream.tool,
            "identity": route.upstream.identity,
            "on_behalf_of": caller.human,
            "scope": route.mapping.scope,
            "resource": resource,
            "request_id": _request_id(ctx),
            "agent": caller.agent,
            "action": params.name,
        }
        try:
            answer = await self.portal.authorize(question)
        except PortalUnavailable as error:
            log.warning("tools/call %s denied: portal unavailable (%s)", params.name, error)
            raise _denied(UNAVAILABLE, None, "the portal did not answer in time") from None
        if answer["decision"] != "allow":
            raise _denied(answer["reason"], answer.get("event_id"))
        outcome = "error"
        try:
            result = await self.pool.call(route.upstream, route.tool, params.arguments or {})
            outcome = "error" if result.is_error else "ok"
            return result
        except MCPError:
            raise  # the upstream's own JSON-RPC error, passed on
        except Exception as error:
            # Allowed, and the upstream could not run it: said without internals.
            failure = type(error).__name__
            log.warning("tools/call %s: upstream %s failed (%s)", params.name, route.upstream.name, failure)
            raise MCPError(UPSTREAM_FAILED, "upstream_unavailable", {"event_id": answer["event_id"]}) from None
        finally:
            self.portal.report(
                {
                    # Not guessable: nobody can report this id first and have the real usage skipped as a repeat.
                    "event_id": f"use:{answer['event_id']}:{uuid.uuid4().hex}",
                    "decision": answer["event_id"],
                    "tool": route.upstream.tool,
                    "identity": route.upstream.identity,
                    "on_behalf_of": caller.human,
                    "scope": route.mapping.scope,
                    "resource": resource,
                    "agent": caller.agent,
                    "action": params.name,
                    "outcome": outcome,
                    "duration_ms": int((time.monotonic() - started) * 1000),
                }
            )


def _denied(reason: str, event_id, detail: str = "") -> MCPError:
    message = f"denied: {reason}" + (f" ({detail})" if detail else "")
    return MCPError(DENIED, message, {"decision": "deny", "reason": reason, "event_id": event_id})


def _headers(ctx):
    request = getattr(ctx, "request", None)
    return getattr(request, "headers", None)


def _request_id(ctx) -> str:
    """The session and the JSON-RPC id. The gateway serves stateless HTTP, so it issues no session: each HTTP request
    is one, named by a fresh random id (a client-sent Mcp-Session-Id is the client's choice, and could be made to
    collide with another's)."""
    return f"mcp:{uuid.uuid4().hex}:{str(ctx.request_id)[:48]}"


def _transport_security(config: Config) -> TransportSecuritySettings:
    """Host and Origin checked on every request, whatever the listen address: a web page that rebinds its own name
    to the gateway's address must not reach it (and, in header mode, name any human)."""
    names = [config.host if ":" not in config.host else f"[{config.host}]", *config.allowed_hosts]
    if loopback(config.host):
        names += ["127.0.0.1", "localhost", "[::1]"]
    hosts = sorted({n for name in names for n in (name, f"{name}:{config.port}")})
    origins = sorted({f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")})
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def build_server(gateway: Gateway) -> Server:
    return Server(
        "nhi-mcp-gateway",
        version="1",
        instructions="Every tool call is authorized by NHI Portal for the signed-in human before it runs.",
        get_tool_input_schema=gateway.input_schema,
        on_list_tools=gateway.list_tools,
        on_call_tool=gateway.call_tool,
    )


def build_app(config: Config):
    """The ASGI app: the MCP endpoint at /mcp, with the upstream connections and the usage reporter living as long as
    the app does."""
    portal = PortalClient(config.portal, flush_seconds=config.usage_flush_ms / 1000, max_batch=config.usage_max_batch)
    pool = UpstreamPool(config.upstreams)
    gateway = Gateway(config, pool, portal, Identifier(config.human))
    server = build_server(gateway)
    app = server.streamable_http_app(
        stateless_http=True, json_response=True, host=config.host, transport_security=_transport_security(config)
    )
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_):
        async with anyio.create_task_group() as tasks:
            await pool.start(tasks)
            tasks.start_soon(portal.run_reporter)
            try:
                async with inner(app_):
                    yield
            finally:
                tasks.cancel_scope.cancel()
        await portal.aclose()

    app.router.lifespan_context = lifespan
    app.state.gateway = gateway
    return app
