"""The gateway's TOML config (format: README, "Enforce with the MCP gateway"), checked whole at start: an error
names the key, and nothing starts."""

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Portal:
    url: str
    token: str
    timeout: float


@dataclass(frozen=True)
class Human:
    mode: str  # "header" or "jwt"
    header: str = "X-Forwarded-User"
    trusted_proxy: bool = False
    jwks: str = ""
    issuer: str = ""
    audience: str = ""
    claim: str = "preferred_username"
    leeway: int = 30


@dataclass(frozen=True)
class ToolMap:
    tool: str  # the MCP tool's name on the upstream
    scope: str
    resource: str  # a template over the call's arguments; "*" for any

    @property
    def arguments(self) -> tuple[str, ...]:
        return tuple(PLACEHOLDER.findall(self.resource))


@dataclass(frozen=True)
class Upstream:
    name: str
    tool: str  # the AI tool's slug in the portal
    identity: str
    url: str = ""
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    maps: tuple[ToolMap, ...] = ()

    def mapping(self, tool: str) -> ToolMap | None:
        return next((m for m in self.maps if m.tool == tool), None)


@dataclass(frozen=True)
class Config:
    portal: Portal
    host: str
    port: int
    human: Human
    upstreams: tuple[Upstream, ...]
    # Usage reports are batched: sent every flush_ms, or as soon as max_batch are waiting (see portal.PortalClient).
    usage_flush_ms: int = 1000
    usage_max_batch: int = 500
    # Host header values accepted besides the listen address (the name clients use behind a proxy): the check
    # that keeps a web page from rebinding its own name to the gateway's address.
    allowed_hosts: tuple[str, ...] = ()

    @property
    def prefixed(self) -> bool:
        """With several upstreams, each tool is exposed as `<upstream>_<tool>`; with one, under its own name."""
        return len(self.upstreams) > 1


def load(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError("--config", f"no such file: {path}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("--config", f"not valid TOML: {error}") from error
    return parse(raw, environ)


def parse(raw: dict[str, Any], environ) -> Config:
    _only(raw, "", {"portal", "listen", "human", "upstream", "usage"})
    portal = _portal(_table(raw, "portal"), environ)
    listen = _table(raw, "listen")
    _only(listen, "listen.", {"host", "port", "allowed_hosts"})
    host = _text(listen, "listen.host", default="127.0.0.1")
    port = _int(listen, "listen.port", default=8790, low=1, high=65535)
    allowed_hosts = listen.get("allowed_hosts", [])
    if not isinstance(allowed_hosts, list) or not all(isinstance(h, str) and h for h in allowed_hosts):
        raise ConfigError("listen.allowed_hosts", 'a list of Host header values, e.g. ["mcp.example.com"]')
    human = _human(_table(raw, "human"), host)
    upstreams = raw.get("upstream")
    if not isinstance(upstreams, list) or not upstreams:
        raise ConfigError("upstream", "at least one [[upstream]] table is required")
    parsed = tuple(_upstream(u, f"upstream[{i}]", environ) for i, u in enumerate(upstreams))
    names = [u.name for u in parsed]
    if len(set(names)) != len(names):
        raise ConfigError("upstream.name", "upstream names must be unique")
    usage = raw.get("usage", {})
    if not isinstance(usage, dict):
        raise ConfigError("usage", "must be a table")
    _only(usage, "usage.", {"flush_ms", "max_batch"})
    flush = _int(usage, "usage.flush_ms", default=1000, low=10, high=60_000)
    # The portal takes at most 1,000 events in one POST /events/.
    max_batch = _int(usage, "usage.max_batch", default=500, low=1, high=1000)
    return Config(portal, host, port, human, parsed, flush, max_batch, tuple(allowed_hosts))


def _portal(table: dict, environ) -> Portal:
    _only(table, "portal.", {"url", "token_env", "timeout_ms"})
    url = _url(table, "portal.url", loopback_http=True)
    token_env = _text(table, "portal.token_env", default="NHI_GATEWAY_TOKEN")
    token = environ.get(token_env, "")
    if not token:
        raise ConfigError("portal.token_env", f"the environment variable {token_env} holds no gateway token")
    timeout = _int(table, "portal.timeout_ms", default=2000, low=50, high=60_000)
    return Portal(url.rstrip("/"), token, timeout / 1000)


def _human(table: dict, host: str) -> Human:
    _only(table, "human.", {"mode", "header", "trusted_proxy", "jwks", "issuer", "audience", "claim", "leeway_s"})
    mode = _text(table, "human.mode")
    if mode == "header":
        trusted = table.get("trusted_proxy", False)
        if not isinstance(trusted, bool):
            raise ConfigError("human.trusted_proxy", "must be true or false")
        if not trusted and not _loopback(host):
            raise ConfigError(
                "human.mode",
                "header mode trusts whoever can reach the gateway to name the human: listen on a loopback address, "
                "or set human.trusted_proxy = true when only an authenticating proxy can reach it",
            )
        header = _text(table, "human.header", default="X-Forwarded-User")
        if not re.fullmatch(r"[A-Za-z0-9-]+", header):
            raise ConfigError("human.header", "must be an HTTP header name")
        return Human(mode, header=header, trusted_proxy=trusted)
    if mode == "jwt":
        jwks = _text(table, "human.jwks")
        # Plain http would let anyone on the path to the IdP serve their own keys, and so name any human.
        insecure = jwks.startswith("http://") and not _loopback(urlsplit(jwks).hostname or "")
        if not jwks.startswith(("file://", "https://", "http://")) or insecure:
            raise ConfigError("human.jwks", 'must be a "file://" path or an "https://" URL of a JWKS')
        if jwks.startswith("file://") and not Path(jwks.removeprefix("file://")).is_file():
            raise ConfigError("human.jwks", f"no such file: {jwks.removeprefix('file://')}")
        return Human(
            mode,
            jwks=jwks,
            issuer=_text(table, "human.issuer"),
            audience=_text(table, "human.audience"),
            claim=_text(table, "human.claim", default="preferred_username"),
            leeway=_int(table, "human.leeway_s", default=30, low=0, high=300),
        )
    raise ConfigError("human.mode", 'must be "header" or "jwt"')


def _upstream(table: Any, key: str, environ) -> Upstream:
    if not isinstance(table, dict):
        raise ConfigError(key, "must be a table")
    _only(table, f"{key}.", {"name", "tool", "identity", "url", "command", "env", "headers_env", "map"})
    name = _text(table, f"{key}.name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}", name):
        raise ConfigError(f"{key}.name", "letters, digits and dashes, at most 40")
    url, command = table.get("url"), table.get("command")
    if (url is None) == (command is None):
        raise ConfigError(f"{key}.url", "give exactly one of url (streamable HTTP) or command (stdio)")
    if command is not None and (
        not isinstance(command, list) or not command or not all(isinstance(c, str) and c for c in command)
    ):
        raise ConfigError(f"{key}.command", "a non-empty list of strings")
    env = _env_refs(table, f"{key}.env", environ)
    headers = _env_refs(table, f"{key}.headers_env", environ)
    maps = table.get("map", [])
    if not isinstance(maps, list):
        raise ConfigError(f"{key}.map", "must be an array of tables [[upstream.map]]")
    parsed = tuple(_map(m, f"{key}.map[{i}]") for i, m in enumerate(maps))
    tools = [m.tool for m in parsed]
    if len(set(tools)) != len(tools):
        raise ConfigError(f"{key}.map.tool", "each MCP tool is mapped once")
    return Upstream(
        name=name,
        tool=_text(table, f"{key}.tool"),
        identity=_text(table, f"{key}.identity"),
        url=_url(table, f"{key}.url") if url is not None else "",
        command=tuple(command or ()),
        env=env,
        headers=headers,
        maps=parsed,
    )


def _map(table: Any, key: str) -> ToolMap:
    if not isinstance(table, dict):
        raise ConfigError(key, "must be a table")
    _only(table, f"{key}.", {"tool", "scope", "resource"})
    resource = _text(table, f"{key}.resource", default="*")
    leftover = PLACEHOLDER.sub("", resource)
    if "{" in leftover or "}" in leftover:
        raise ConfigError(f"{key}.resource", "placeholders are {argument_name}; braces are not allowed otherwise")
    # A template without a placeholder would ask about the same resource whatever the call acts on, and a "*" in it
    # is a literal that a grant's wildcard matches: both would turn the resource check off. "*" alone asks about
    # the tool as a whole (the empty resource), which only an unconstrained grant allows.
    if resource != "*" and (not PLACEHOLDER.search(resource) or "*" in resource):
        raise ConfigError(
            f"{key}.resource",
            'a template over the call\'s arguments, e.g. "space:{space}" (no "*" in it), or "*" alone',
        )
    return ToolMap(tool=_text(table, f"{key}.tool"), scope=_text(table, f"{key}.scope"), resource=resource)


def _env_refs(table: dict, key: str, environ) -> dict[str, str]:
    """`{NAME = "ENV_VAR"}`: values come from the environment, so no secret sits in the config file."""
    value = table.get(key.rsplit(".", 1)[1], {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(key, 'a table of NAME = "ENVIRONMENT_VARIABLE"')
    missing = [v for v in value.values() if v not in environ]
    if missing:
        raise ConfigError(key, f"environment variable {missing[0]} is not set")
    return {name: environ[var] for name, var in value.items()}


def _table(raw: dict, key: str) -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(key, f"the [{key}] table is required")
    return value


def _only(table: dict, prefix: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}", "unknown key (a typo?)")


def _text(table: dict, key: str, default: str | None = None) -> str:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if value is None:
        raise ConfigError(key, "required")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "must be a non-empty string")
    return value


def _int(table: dict, key: str, *, default: int, low: int, high: int) -> int:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"a whole number from {low} to {high}")
    return value


def _url(table: dict, key: str, *, loopback_http: bool = False) -> str:
    value = _text(table, key)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, "an http:// or https:// URL")
    if loopback_http and parts.scheme == "http" and not _loopback(parts.hostname):
        # The gateway token would cross the network in clear, and an answer could be forged on the way.
        raise ConfigError(key, "https:// (plain http:// only to a loopback address)")
    return value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback(host: str) -> bool:
    return _loopback(host)
