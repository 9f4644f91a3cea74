"""The gateway's HTTP/1.1 client for the portal, against real sockets: it reuses a kept connection, never reads a late
answer as the answer to the next question, and refuses answers it cannot frame without guessing."""

import asyncio

import anyio
import pytest

from gateway.http11 import Http11, ProtocolError
from tests.gateway.processes import run_async


class Server:
    """A loopback HTTP server whose answers the test writes byte for byte; it counts connections and requests."""

    def __init__(self, answer):
        self.answer = answer  # async (request number, body, writer) -> None
        self.connections = 0
        self.requests = 0

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = await reader.readexactly(length)
                self.requests += 1
                await self.answer(self.requests, body, writer)
                await writer.drain()
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _json(n: int, *, close: bool = False) -> bytes:
    body = b'{"n": %d}' % n
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


def test_a_kept_connection_carries_the_next_question():
    async def main():
        async def answer(n, body, writer):
            writer.write(_json(n))

        async with Server(answer) as server:
            client = Http11(server.url, {"Authorization": "Token t"})
            answers = [(await client.post("/q/", b"{}")).body for _ in range(3)]
            await client.aclose()
            return answers, server.connections

    answers, connections = run_async(main)
    assert answers == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'] and connections == 1


def test_a_connection_the_server_closes_is_not_reused_and_one_closed_while_idle_is_replaced():
    async def main():
        async def answer(n, body, writer):
            writer.write(_json(n, close=n == 1))  # the first answer says close (gunicorn's sync workers do)
            if n == 1:
                writer.close()
            if n == 2:
                writer.close()  # kept-alive by its headers, then closed while idle

        async with Server(answer) as server:
            client = Http11(server.url, {})
            first = (await client.post("/q/", b"{}")).body
            second = (await client.post("/q/", b"{}")).body
            await asyncio.sleep(0.05)
            third = (await client.post("/q/", b"{}")).body
            return [first, second, third], server.connections

    answers, connections = run_async(main)
    assert answers == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'] and connections == 3


def test_a_late_answer_is_never_read_as_the_answer_to_the_next_question():
    async def main():
        async def answer(n, body, writer):
            if n == 1:
                await asyncio.sleep(0.5)  # the answer to the first question arrives after the caller gave up
            writer.write(_json(n))

        async with Server(answer) as server:
            client = Http11(server.url, {})
            with pytest.raises(TimeoutError), anyio.fail_after(0.1):
                await client.post("/q/", b'{"question": 1}')
            second = (await client.post("/q/", b'{"question": 2}')).body
            return second, server.connections

    second, connections = run_async(main)
    assert second == b'{"n": 2}' and connections == 2  # a fresh connection, and its own answer


def test_chunked_and_close_delimited_answers_are_read_whole():
    async def main():
        async def answer(n, body, writer):
            if n == 1:
                writer.write(
                    b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"n"\r\n4;x=y\r\n: 1}\r\n0\r\n\r\n'
                )
            else:
                writer.write(b'HTTP/1.0 200 OK\r\n\r\n{"n": 2}')
                writer.close()

        async with Server(answer) as server:
            client = Http11(server.url, {})
            return [(await client.post("/q/", b"{}")).body for _ in range(2)]

    assert run_async(main) == [b'{"n": 1}', b'{"n": 2}']


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\n bad header\r\n\r\n{}",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # shorter than it said, then closed
    ],
)
def test_an_answer_that_cannot_be_framed_without_guessing_is_refused(raw):
    async def main():
        async def answer(n, body, writer):
            writer.write(raw)
            writer.close()

        async with Server(answer) as server:
            with pytest.raises(ProtocolError):
                await Http11(server.url, {}).post("/q/", b"{}")

    run_async(main)


def test_a_header_value_with_a_line_break_is_refused_at_start():
    with pytest.raises(ValueError, match="line break"):
        Http11("http://127.0.0.1:1", {"Authorization": "Token a\r\nX-Evil: 1"})


def test_usage_queued_during_a_flush_waits_for_the_next_one_and_a_failed_batch_is_kept():
    """A steady stream of calls must not become one small POST per call: each flush sends what was queued when it
    began. A batch the portal did not take stays queued, in order, for the next flush."""
    import json

    from gateway.config import Portal
    from gateway.portal import PortalClient

    async def main():
        sizes = []

        async def answer(n, body, writer):
            await asyncio.sleep(0.1)
            if n == 2:
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                return
            sizes.append([e["event_id"] for e in json.loads(body)["events"]])
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")

        async with Server(answer) as server:
            client = PortalClient(Portal(server.url, "t", 2.0), max_batch=3)
            client.report({"event_id": "e0"})
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(client.flush)
                await anyio.sleep(0.05)
                for n in range(1, 6):
                    client.report({"event_id": f"e{n}"})
            queued_after_first = [e["event_id"] for e in client._usage]
            assert not await client.flush()  # the portal answered 503: nothing lost, nothing sent twice
            assert await client.flush()
            await client.aclose()
            return sizes, queued_after_first, client._usage

    sizes, queued_after_first, left = run_async(main)
    assert queued_after_first == ["e1", "e2", "e3", "e4", "e5"]
    assert sizes == [["e0"], ["e1", "e2", "e3"], ["e4", "e5"]] and left == []


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1, signed by itself: trusted only where the test says so."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nhi-test-portal")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "portal.pem", tmp_path / "portal.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_checks_the_portals_certificate(tmp_path, monkeypatch):
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def main(trusted: bool):
        async def serve(reader, writer):
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(_json(1, close=True))
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        try:
            client = Http11(f"https://127.0.0.1:{port}", {})
            if trusted:
                return (await client.post("/q/", b"{}")).body
            with pytest.raises(ssl.SSLCertVerificationError):
                await client.post("/q/", b"{}")
        finally:
            server.close()

    run_async(lambda: main(trusted=False))  # the system's CAs do not vouch for it
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert run_async(lambda: main(trusted=True)) == b'{"n": 1}'
