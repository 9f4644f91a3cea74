"""jwt mode: the human comes from a signed token checked against a JWKS, issuer and audience; the agent from
`act.sub` (or `client_id`) is recorded. Forged, expired and mis-addressed tokens never reach the portal."""

import http.server
import json
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from inventory.models import AccessEvent
from tests.gateway.processes import calls
from tests.gateway.test_enforcement import call

pytestmark = pytest.mark.django_db(transaction=True)

ISSUER, AUDIENCE = "https://idp.example.test", "nhi-mcp-gateway"


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys():
    return {"good": _key(), "other": _key()}


def _jwks(key) -> dict:
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}


def _token(key, **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "preferred_username": "alice", **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def _shared_secret_token() -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "preferred_username": "alice"}
    return jwt.encode(claims, "a-shared-secret-anyone-could-hold-32b", algorithm="HS256", headers={"kid": "k1"})


def _human(jwks_url: str) -> str:
    claim = 'claim = "preferred_username"'
    return f'mode = "jwt"\njwks = "{jwks_url}"\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n{claim}'


@pytest.fixture
def jwks_file(tmp_path, keys):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(_jwks(keys["good"])))
    return f"file://{path}"


def test_a_valid_token_names_the_human_and_the_agent(gateway_for, keys, jwks_file):
    url = gateway_for(human=_human(jwks_file))
    token = _token(keys["good"], act={"sub": "claude-code"})
    answer = call(url, "search_docs", headers={"Authorization": f"Bearer {token}"}, space="ENG", query="deploy")
    assert answer.get("ok"), answer
    event = AccessEvent.objects.get(kind="decision")
    assert (event.on_behalf_of.username, event.agent, event.decision) == ("alice", "claude-code", "allow")


def test_client_id_is_the_agent_when_there_is_no_actor(gateway_for, keys, jwks_file):
    url = gateway_for(human=_human(jwks_file))
    token = _token(keys["good"], client_id="cursor-ide")
    call(url, "search_docs", headers={"Authorization": f"Bearer {token}"}, space="ENG", query="deploy")
    assert AccessEvent.objects.get(kind="decision").agent == "cursor-ide"


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda k: _token(k["other"]), "InvalidSignatureError"),  # forged: right kid, wrong key
        (lambda k: _token(k["good"], exp=int(time.time()) - 3600), "expired"),
        (lambda k: _token(k["good"], aud="someone-else"), "InvalidAudienceError"),
        (lambda k: _token(k["good"], iss="https://evil.example"), "InvalidIssuerError"),
        (lambda k: _token(k["good"], preferred_username=""), "no human"),
        (lambda k: _shared_secret_token(), "refused"),
        (lambda k: "not-a-jwt", "refused"),
    ],
)
def test_forged_expired_or_misaddressed_tokens_are_refused(gateway_for, sample, keys, jwks_file, make, why):
    url = gateway_for(human=_human(jwks_file))
    before = calls(sample)
    answer = call(url, "search_docs", headers={"Authorization": f"Bearer {make(keys)}"}, space="ENG", query="x")
    assert answer["error"].startswith("denied: no_human") and why in answer["error"]
    assert "eyJ" not in answer["error"]  # the token is never echoed
    assert not AccessEvent.objects.exists() and calls(sample) == before


def test_a_jwks_url_is_fetched_and_used(gateway_for, keys):
    body = json.dumps(_jwks(keys["good"])).encode()

    class JWKS(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), JWKS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = gateway_for(human=_human(f"http://127.0.0.1:{server.server_port}/jwks.json"))
        token = _token(keys["good"])
        assert call(url, "search_docs", headers={"Authorization": f"Bearer {token}"}, space="ENG", query="x")["ok"]
    finally:
        server.shutdown()
