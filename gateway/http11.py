"""A small HTTP/1.1 client for the portal's JSON API: POST a body, read the status and the body.

Why not a general client: every tools/call waits on one portal question, and on this path a general client's
machinery (request and response models, an async connection pool built on cancel scopes, happy-eyeballs connects)
cost more CPU per call than the rest of the gateway's own work (bench/gateway.py measures it). This one writes the
request in one piece, reads exactly the answer it asked for, and keeps the connection open for the next question
when the portal allows it (HTTP/1.1 without `Connection: close`; gunicorn's sync workers close after each answer,
threaded ones keep it).

A connection goes back to the pool only after its whole answer was read: one cancelled by a timeout, or that broke
mid-answer, is closed, so a late answer can never be read as the answer to the next question.
"""

import asyncio
from collections import deque
from urllib.parse import urlsplit

import httpx2

MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024  # a row-error answer to a full usage batch fits with room; an authorize answer is ~200 B
MAX_IDLE = 16  # idle keep-alive connections kept (one per call in flight, at most this many kept between calls)


class ProtocolError(Exception):
    """The answer was not HTTP/1.x as expected (or too large): the connection is dropped."""


class _Stale(Exception):
    """A kept connection the server had closed while idle: nothing came back, so the question is asked again on a
    new connection (with the same request id: should the portal have recorded it after all, its replay rule
    decides about the repeat; event ids make a repeated usage report harmless)."""


class Answer:
    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes):
        self.status, self.body = status, body


class Http11:
    def __init__(self, base_url: str, headers: dict[str, str], *, max_connections: int = 64):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        # The same trust as the SDK's HTTP client (system CAs, SSL_CERT_FILE / SSL_CERT_DIR), hostname checked.
        self.ssl = httpx2.create_ssl_context() if parts.scheme == "https" else None
        self.prefix = parts.path.rstrip("/")
        netloc = parts.netloc.rpartition("@")[2]  # never userinfo in a Host header
        fixed = {"Host": netloc, "Connection": "keep-alive", "Content-Type": "application/json", **headers}
        for name, value in fixed.items():
            if any(c in f"{name}{value}" for c in "\r\n\0"):
                raise ValueError(f"header {name} holds a line break")
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        # Bounded like any pool: beyond it a question waits for a connection, within the caller's timeout.
        self._slots = asyncio.Semaphore(max_connections)

    async def post(self, path: str, body: bytes) -> Answer:
        request = (
            f"POST {self.prefix}{path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1")
            + body
        )
        async with self._slots:
            while self._idle:
                reader, writer = self._idle.pop()
                if reader.at_eof() or writer.is_closing():
                    writer.close()
                    continue
                try:
                    return await self._exchange(reader, writer, request, kept=True)
                except _Stale:
                    continue
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl, limit=MAX_HEAD, server_hostname=self.host if self.ssl else None
            )
            return await self._exchange(reader, writer, request, kept=False)

    async def _exchange(self, reader, writer, request: bytes, *, kept: bool) -> Answer:
        reusable = False
        try:
            try:
                writer.write(request)
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError) as error:
                if kept:
                    raise _Stale from error
                raise
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError) as error:
                partial = getattr(error, "partial", b"")
                if kept and not partial:
                    raise _Stale from error
                raise ProtocolError("the connection closed before an answer") from error
            except asyncio.LimitOverrunError as error:
                raise ProtocolError("answer headers too large") from error
            status, headers, version = _head(head)
            while 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
                status, headers, version = _head(await reader.readuntil(b"\r\n\r\n"))
            keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
            if status in (204, 304):
                body = b""
            elif "transfer-encoding" in headers:
                if headers["transfer-encoding"].lower() != "chunked":
                    raise ProtocolError(f"transfer-encoding {headers['transfer-encoding'][:40]}")
                body = await _chunked(reader)
            elif "content-length" in headers:
                length = int(headers["content-length"]) if headers["content-length"].isdigit() else -1
                if not 0 <= length <= MAX_BODY:
                    raise ProtocolError("a malformed or too large content-length")
                body = await reader.readexactly(length)
            else:  # delimited by the close
                body = await reader.read(MAX_BODY + 1)
                while len(body) <= MAX_BODY and not reader.at_eof():
                    more = await reader.read(MAX_BODY + 1 - len(body))
                    if not more:
                        break
                    body += more
                if len(body) > MAX_BODY:
                    raise ProtocolError("answer too large")
                keep = False
            reusable = keep
            return Answer(status, body)
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            raise ProtocolError(type(error).__name__) from error
        finally:
            if reusable and len(self._idle) < MAX_IDLE:
                self._idle.append((reader, writer))
            else:
                writer.close()

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()


def _head(raw: bytes) -> tuple[int, dict[str, str], str]:
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(rest) < 3 or not rest[:3].isdigit():
        raise ProtocolError("not an HTTP/1.x status line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError("a malformed header line")
        name = name.lower()
        value = value.strip()
        if name in ("content-length", "transfer-encoding") and name in headers and headers[name] != value:
            raise ProtocolError(f"conflicting {name} headers")  # a smuggling shape: never guess which one holds
        headers[name] = value
    if "transfer-encoding" in headers and "content-length" in headers:
        raise ProtocolError("both transfer-encoding and content-length")
    return int(rest[:3]), headers, version


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts, total = [], 0
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, unused
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise ProtocolError("answer too large")
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("a malformed chunk")
