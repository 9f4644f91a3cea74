"""Start the real OpenID Provider in this folder (node-oidc-provider, see server.js) for a test session.

Self-sufficient: installs the locked packages with `npm ci` when node_modules is missing, picks a free port, waits for
the discovery document. Without node and npm the tests that need it skip (fail under NHI_REQUIRE_SERVICES=1).
"""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

from tests import services

HERE = Path(__file__).resolve().parent
CLIENT_ID = "nhi-portal"
CLIENT_SECRET = "test-client-secret-5b0e8f2a9c4d7e1f3a6b"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OpenIDProvider:
    def __init__(self, portal_url: str, workdir: Path):
        self.portal_url = portal_url.rstrip("/")
        self.accounts_file = workdir / "accounts.json"
        self.accounts: dict = {}
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.discovery: dict = {}

    def set_account(self, login: str, **claims) -> None:
        """The provider's record of a user; read on every token, so a change shows at the next sign-in."""
        self.accounts[login] = claims
        self.accounts_file.write_text(json.dumps(self.accounts))

    def start(self) -> "OpenIDProvider":
        node, npm = shutil.which("node"), shutil.which("npm")
        if not node or not npm:
            services.missing("needs node and npm for the local OpenID Provider")
        if not (HERE / "node_modules" / "oidc-provider").is_dir():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True, timeout=300
            )
        self.set_account("nobody")
        env = os.environ | {
            "PORT": str(self.port),
            "PORTAL_URL": self.portal_url,
            "ACCOUNTS_FILE": str(self.accounts_file),
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
        }
        self.process = subprocess.Popen(
            [node, "server.js"], cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.discovery = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).json()
                return self
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the OpenID Provider did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def portal_settings(self) -> dict:
        """The portal's OIDC settings for this provider, from its discovery document."""
        d = self.discovery
        return {
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_ISSUER": d["issuer"],
            "OIDC_OP_AUTHORIZATION_ENDPOINT": d["authorization_endpoint"],
            "OIDC_OP_TOKEN_ENDPOINT": d["token_endpoint"],
            "OIDC_OP_USER_ENDPOINT": d["userinfo_endpoint"],
            "OIDC_OP_JWKS_ENDPOINT": d["jwks_uri"],
            "OIDC_OP_LOGOUT_ENDPOINT": d["end_session_endpoint"],
        }
