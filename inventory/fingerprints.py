"""Turning a submitted secret into what we keep: a keyed fingerprint and its last four characters.

The secret itself is dropped here, on arrival, and never reaches a model, a log line or a response.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings

FINGERPRINT_PREFIX = "hmac-sha256:"
# What a stored fingerprint looks like; anything else offered "as a fingerprint" may be a pasted secret.
FINGERPRINT_RE = re.compile(re.escape(FINGERPRINT_PREFIX) + r"[0-9a-f]{64}\Z")
MIN_SECRET_LENGTH = 8


@dataclass(frozen=True, slots=True)
class SecretDigest:
    fingerprint: str
    last4: str

    def __repr__(self) -> str:
        return f"SecretDigest(fingerprint={self.fingerprint!r}, last4='…')"


def digest_secret(secret: str) -> SecretDigest:
    key = settings.CREDENTIAL_FINGERPRINT_KEY.encode()
    mac = hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
    return SecretDigest(fingerprint=FINGERPRINT_PREFIX + mac, last4=secret[-4:])


def validate_secret(secret: str) -> str | None:
    """Why a submitted secret is unacceptable, or None. The message never repeats the secret."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"A secret must be at least {MIN_SECRET_LENGTH} characters long."
    if secret != secret.strip():
        return "A secret must not start or end with whitespace."
    return None
