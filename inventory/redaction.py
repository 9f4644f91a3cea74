"""Finding secrets embedded in the text registered for a tool (prompt templates, connector configuration).

Built on detect-secrets. The text is stored with every secret replaced by a marker, so the portal keeps the
evidence (which line, which kind of secret) but never the secret; the matches feed the secret_exposed detector.
"""

from dataclasses import dataclass

from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings

# detect-secrets' entropy plugins also flag short tokens in ordinary prose; below this length they are noise.
MIN_SECRET_LENGTH = 12
MARKER = "[REDACTED {kind}]"


@dataclass(frozen=True)
class SecretMatch:
    line_number: int
    secret_type: str
    redacted: str


def redact_secrets(text: str) -> tuple[str, list[SecretMatch]]:
    """The text with secrets replaced by markers, and one match per secret found."""
    lines = text.splitlines(keepends=True)
    matches: list[SecretMatch] = []
    with default_settings():
        for number, line in enumerate(lines, start=1):
            found = {}
            for secret in scan_line(line.rstrip("\r\n")):
                value = secret.secret_value or ""
                if len(value) >= MIN_SECRET_LENGTH and value in line:
                    found.setdefault(value, secret.type)
            # Longest first, so a secret that contains another is masked whole.
            for value, kind in sorted(found.items(), key=lambda item: -len(item[0])):
                line = line.replace(value, MARKER.format(kind=kind))
            for kind in dict.fromkeys(found.values()):
                matches.append(SecretMatch(number, kind, line.strip()[:200]))
            lines[number - 1] = line
    return "".join(lines), matches
