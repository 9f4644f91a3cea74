"""The hostile review's findings, kept: each failed before its fix."""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from jwt.algorithms import RSAAlgorithm

from gateway.config import ConfigError, Human, parse
from gateway.humans import Identifier, NoHuman
from inventory.integration import gateway_config
from inventory.models import AccessEvent
from tests.factories import UserFactory
from tests.gateway.conftest import config_text
from tests.gateway.processes import calls, free_port, run_async, run_client, start_gateway
from tests.gateway.test_config import ENV, _config
from tests.gateway.test_enforcement import _call, call

live = pytest.mark.django_db(transaction=True)


def _raw(url: str, headers: list[tuple[str, str]], **arguments) -> int:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "search_docs", "arguments": arguments},
    }
    base = [("Accept", "application/json, text/event-stream"), ("Content-Type", "application/json"),
            ("MCP-Protocol-Version", "2025-06-18")]  # fmt: skip
    return httpx2.post(url, content=json.dumps(body), headers=base + headers, timeout=30).status_code


# Config -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["space:ENG", "space:*", "space:{space}*"])
def test_a_resource_is_a_template_or_star_alone(resource):
    """A constant would ask about one resource whatever the call acts on; a "*" in it is matched by a grant's own."""
    upstream = {**_config()["upstream"][0], "map": [{"tool": "search_docs", "scope": "s", "resource": resource}]}
    with pytest.raises(ConfigError) as error:
        parse(_config(upstream=[upstream]), ENV)
    assert error.value.key == "upstream[0].map[0].resource"


@pytest.mark.parametrize(
    ("human", "key"),
    [
        ({"mode": "jwt", "jwks": "http://idp.example/jwks.json", "issuer": "i", "audience": "a"}, "human.jwks"),
    ],
)
def test_keys_and_tokens_never_travel_in_clear_off_this_host(human, key):
    with pytest.raises(ConfigError) as error:
        parse(_config(human=human), ENV)
    assert error.value.key == key
    with pytest.raises(ConfigError) as error:
        parse(_config(portal__url="http://portal.example"), ENV)
    assert error.value.key == "portal.url"


@live
def test_the_tool_pages_config_does_not_start_until_its_resource_is_written(estate):
    text = gateway_config(tool=estate["tool"], portal_url="http://127.0.0.1:8000", now=timezone.now())
    assert 'granted on "space:ENG"' in text
    import tomllib

    with pytest.raises(ConfigError) as error:
        parse(tomllib.loads(text), ENV)
    assert error.value.key.endswith(".resource")


# Who the human is ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("name", ["alice\u00a0", "\u3000alice", "alice\u2003", " alice", "alice\n", "al\u200bice"])
def test_a_username_is_taken_exactly_or_not_at_all(tmp_path, signing_key, name):
    public = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256"}]}))
    identifier = Identifier(Human("jwt", jwks=f"file://{path}", issuer="https://idp", audience="gw"))
    now = int(time.time())
    claims = {"iss": "https://idp", "aud": "gw", "exp": now + 60, "preferred_username": name}
    token = jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(NoHuman):
        run_async(lambda: identifier.caller({"authorization": f"Bearer {token}"}))


@live
def test_a_repeated_identity_header_names_no_human(gateway_for, sample, estate):
    UserFactory(username="mallory")
    url = gateway_for()
    before = calls(sample)
    headers = [("X-Forwarded-User", "alice"), ("X-Forwarded-User", "mallory")]
    answer = run_client(url, headers, lambda client: _call(client, "search_docs", space="ENG", query="deploy"))
    assert answer["error"].startswith("denied: no_human")
    assert calls(sample) == before and not AccessEvent.objects.exists()


@live
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
def test_a_foreign_host_header_is_refused_on_any_loopback_address(live_server, sample, estate, host):
    """DNS rebinding: a page whose name resolves to the gateway's address must not reach it."""
    port = free_port()
    text = config_text(portal=live_server.url, port=port, upstream=f'url = "{sample}/mcp"').replace(
        'host = "127.0.0.1"', f'host = "{host}"'
    )
    process = start_gateway(text, estate["token"], port, host=host)
    try:
        url = f"http://{host}:{port}/mcp"
        foreign = [("Host", f"attacker.example:{port}"), ("X-Forwarded-User", "alice")]
        assert _raw(url, foreign, space="ENG", query="deploy") in (400, 403, 421)
        own = [("Host", f"{host}:{port}"), ("X-Forwarded-User", "alice")]
        assert _raw(url, own, space="ENG", query="deploy") == 200
    finally:
        process.stop()


# What the portal answered, and what the upstream does ---------------------------------------------------------------


class _FixedPortal:
    def __init__(self, body: dict):
        payload = json.dumps(body).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@live
@pytest.mark.parametrize("event_id", ["missing", None, "7", 0, True])
def test_an_allow_that_names_no_recorded_event_is_not_forwarded(gateway_for, sample, event_id):
    body = {"decision": "allow", "reason": "allowed"} | ({} if event_id == "missing" else {"event_id": event_id})
    portal = _FixedPortal(body)
    try:
        url = gateway_for(portal=portal.url)
        before = calls(sample)
        answer = call(url, "search_docs", space="ENG", query="deploy")
        assert answer["data"]["reason"] == "portal_unavailable" and calls(sample) == before
    finally:
        portal.server.shutdown()


@live
def test_a_template_over_an_argument_the_tool_does_not_require_stops_the_gateway(live_server, sample, estate):
    port = free_port()
    text = config_text(portal=live_server.url, port=port, upstream=f'url = "{sample}/mcp"').replace(
        "{space}", "{space_key}"
    )
    with pytest.raises(RuntimeError, match=r"space_key"):
        start_gateway(text, estate["token"], port)


@live
def test_a_crashed_stdio_upstream_is_started_again(gateway_for, estate):
    url = gateway_for(upstream=f'command = ["{sys.executable}", "-m", "gateway.sample_server", "--stdio"]')
    assert call(url, "search_docs", space="ENG", query="deploy") == {"ok": True, "text": "deploys"}
    gateway_pid = int(
        subprocess.run(["pgrep", "-f", "nhi-mcp-gateway"], capture_output=True, text=True).stdout.split()[-1]
    )
    children = subprocess.run(["pgrep", "-P", str(gateway_pid)], capture_output=True, text=True).stdout.split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    deadline = time.monotonic() + 20
    answer = None
    while time.monotonic() < deadline:
        answer = call(url, "search_docs", space="ENG", query="deploy")
        if answer.get("ok"):
            break
        assert answer["code"] != -32003  # never a deny for an upstream failure; never the internals either
        time.sleep(0.5)
    assert answer == {"ok": True, "text": "deploys"}
