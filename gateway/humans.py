"""Who the human is, for each call: a header set by a trusted proxy, or a signed JWT. No human, no call."""

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import jwt

from .config import Human

# Asymmetric algorithms only: a shared-secret (HS*) token could be minted by anyone holding the verification key,
# and "none" is no signature at all.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
MAX_NAME = 150


class NoHuman(Exception):
    """The call names no human the gateway can trust; the reason is safe to show (it never echoes a token)."""


@dataclass(frozen=True)
class Caller:
    human: str
    agent: str | None = None


class Identifier:
    def __init__(self, config: Human):
        self.config = config
        self._keys: jwt.PyJWKSet | None = None
        self._client: jwt.PyJWKClient | None = None
        if config.mode == "jwt":
            if config.jwks.startswith("file://"):
                data = json.loads(Path(config.jwks.removeprefix("file://")).read_text(encoding="utf-8"))
                self._keys = jwt.PyJWKSet.from_dict(data)
            else:
                self._client = jwt.PyJWKClient(config.jwks, cache_keys=True, lifespan=300, timeout=5)

    async def caller(self, headers) -> Caller:
        if headers is None:
            raise NoHuman("no HTTP request to read a human from")
        if self.config.mode == "header":
            # Exactly one: a proxy that appends its header rather than replacing the client's would otherwise leave
            # the client's choice first.
            values = _all(headers, self.config.header)
            if len(values) != 1:
                raise NoHuman(f"exactly one {self.config.header} header is required")
            return Caller(_name(values[0], f"header {self.config.header}"))
        authorizations = _all(headers, "authorization")
        if len(authorizations) != 1:
            raise NoHuman("exactly one bearer token naming the human is required")
        scheme, _, token = authorizations[0].partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NoHuman("a bearer token naming the human is required")
        return await self._verified(token.strip())

    async def _verified(self, token: str) -> Caller:
        try:
            key = await self._signing_key(token)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise NoHuman("the token has expired") from error
        except (jwt.PyJWTError, ValueError) as error:
            raise NoHuman(f"the token was refused ({type(error).__name__})") from error
        human = _name(claims.get(self.config.claim), f"claim {self.config.claim}")
        act = claims.get("act")
        agent = act.get("sub") if isinstance(act, dict) else None
        agent = agent if isinstance(agent, str) and agent else claims.get("client_id")
        return Caller(human, agent[:200] if isinstance(agent, str) and agent else None)

    async def _signing_key(self, token: str):
        if self._keys is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            matches = [k for k in self._keys.keys if kid is None or k.key_id == kid]
            if not matches:
                raise jwt.InvalidKeyError("no key in the JWKS matches the token's kid")
            return matches[0]
        # PyJWKClient fetches over blocking HTTP (and caches): off the event loop.
        return await anyio.to_thread.run_sync(self._client.get_signing_key_from_jwt, token)


def _all(headers, name: str) -> list[str]:
    return headers.getlist(name) if hasattr(headers, "getlist") else [v for v in [headers.get(name)] if v is not None]


def _name(value, where: str) -> str:
    """The name exactly as given, or none: surrounding whitespace or control characters are refused, never trimmed,
    so that "alice\u00a0" at the IdP is not taken for the portal's "alice"."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_NAME
        or value != value.strip()
        or any(unicodedata.category(ch).startswith(("C", "Z")) and ch != " " for ch in value)
    ):
        raise NoHuman(f"no human named in the {where}")
    return value
