"""What every source parser produces, and the readers they share for the providers' values.

A parser turns a provider's export into `IdentityRecord`s and `CredentialRecord`s, naming each problem with the line
(CSV) or JSON path and the field. No message repeats a value: a file may hold a secret in the wrong place.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from inventory.fingerprints import SecretDigest
from nhi_portal.exceptions import PortalError

MAX_ERRORS = 1000
# Control characters break the line a value is shown on; provider identifiers never contain them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class SourceRejected(PortalError):
    """The file has errors; nothing was written. `errors` lists each with its line or path and field."""

    def __init__(self, errors: list[dict[str, Any]], *, truncated: bool = False):
        super().__init__(f"The file has {len(errors)} error(s); nothing was changed.", field="errors")
        self.errors = errors
        self.truncated = truncated


class Invalid(Exception):
    """One field's value is unacceptable; the message never repeats the value."""


@dataclass(slots=True)
class IdentityRecord:
    external_id: str
    label: str  # the provider's name for it, used for the portal name
    kind: str
    where: dict[str, Any]  # {"line": n} or {"path": "..."}
    third_party: bool = False
    active: bool = True
    interactive_use_seen: bool = False
    last_used_at: datetime | None = None
    owner_hint: str = ""
    is_root: bool = False
    # Names the AI catalog matches against: app slugs, display names, client names, publisher tenants, vendors.
    match: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CredentialRecord:
    external_id: str
    identity_external_id: str
    kind: str
    where: dict[str, Any]
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    last_use_known: bool = True
    revoked: bool = False
    revoked_reason: str = ""
    digest: SecretDigest | None = None  # Kubernetes token secrets only: the fingerprint and last four
    exposed: bool = False
    legacy_token: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Parsed:
    identities: list[IdentityRecord] = field(default_factory=list)
    credentials: list[CredentialRecord] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    # Set by parsers whose format can say who the home tenant is not (Entra without account).
    notes: list[str] = field(default_factory=list)


class Problems:
    """Errors or warnings with where they are, capped at MAX_ERRORS."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.truncated = False

    def add(self, where: dict[str, Any], name: str | None, message: str) -> None:
        if len(self.items) >= MAX_ERRORS:
            self.truncated = True
            return
        self.items.append({**where, "field": name, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            raise SourceRejected(self.items, truncated=self.truncated)


def file_error(message: str) -> dict[str, Any]:
    """An error about the file as a whole (not JSON, empty, too large), in the per-row shape."""
    return {"path": "", "field": None, "message": message}


def load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        message = f"Malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        raise SourceRejected([file_error(message)]) from None
    except UnicodeDecodeError:
        raise SourceRejected([file_error("Malformed JSON: the file is not UTF-8 text.")]) from None
    except RecursionError:
        raise SourceRejected([file_error("Malformed JSON: the file is nested too deeply.")]) from None


def text(value: Any, *, max_length: int = 255, blank: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid("Must be a string.")
    if _CONTROL.search(value):
        raise Invalid("Must not contain control characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("Must be valid Unicode text.") from None
    if len(value) > max_length:
        raise Invalid(f"Must be at most {max_length} characters.")
    if not blank and not value.strip():
        raise Invalid("Must not be blank.")
    return value


def identifier(value: Any, *, max_length: int = 255) -> str:
    """A provider's identifier: numbers are accepted as the providers send some ids as numbers."""
    if isinstance(value, bool):
        raise Invalid("Must be a string or a number.")
    if isinstance(value, int):
        return str(value)
    return text(value, max_length=max_length)


def moment(value: Any, *, nullable: bool = True) -> datetime | None:
    """An ISO 8601 date-time (the providers' JSON and AWS's CSV); naive times are UTC, as the providers mean."""
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise Invalid("Must be an ISO 8601 date-time string" + (" or null." if nullable else "."))
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise Invalid("Must be an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z.")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def epoch(value: Any, *, nullable: bool = True) -> datetime | None:
    """Unix seconds, as OpenAI sends times."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("Must be a Unix time in seconds" + (" or null." if nullable else "."))
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise Invalid("Must be a Unix time in seconds within the calendar.") from None


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("Must be true or false.")
    return value


def obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("Must be a JSON object.")
    return value


def items(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid("Must be a list.")
    return value


class Row:
    """One JSON object of an export, read field by field; each problem is recorded at `path.field`."""

    def __init__(self, data: Any, path: str, errors: Problems):
        self.path, self.errors = path, errors
        self.ok = isinstance(data, dict)
        self.data = data if self.ok else {}
        if not self.ok:
            errors.add({"path": path}, None, "Each entry must be a JSON object.")

    def where(self) -> dict[str, Any]:
        return {"path": self.path}

    def get(self, name: str, reader, *, required: bool = True, default: Any = None, **options: Any) -> Any:
        if name not in self.data:
            if required:
                self.fail(name, "This field is required.")
            return default
        try:
            return reader(self.data[name], **options)
        except Invalid as exc:
            self.fail(name, str(exc))
            return default

    def fail(self, name: str, message: str) -> None:
        self.ok = False
        self.errors.add({"path": self.path}, name, message)


def top_list(document: Any, *envelope: str) -> tuple[list[Any], str]:
    """The export's list of entries: a bare JSON array, or the list under the provider's envelope key."""
    if isinstance(document, list):
        return document, ""
    for key in envelope:
        if isinstance(document, dict) and isinstance(document.get(key), list):
            return document[key], key
    shapes = " or ".join(["a JSON array", *(f'an object with a "{key}" list' for key in envelope)])
    raise SourceRejected([file_error(f"The file must be {shapes}.")])


def listed_rows(raw: bytes, errors: Problems, *envelope: str) -> Iterator[Row]:
    """Each entry of an export's list (`top_list`) as a `Row` at its JSON path; an entry that is not an object is
    recorded in `errors` and skipped. The file-level problems (not JSON, not a list) raise at the first entry."""
    entries, key = top_list(load_json(raw), *envelope)
    for i, data in enumerate(entries):
        row = Row(data, f"{key}[{i}]", errors)
        if row.ok:
            yield row


def add_key(parsed: Parsed, identity: IdentityRecord, *, suffix: str, kind: str, **credential: Any) -> None:
    """The shape every listed key or token takes (GitHub fine-grained PATs, Okta API tokens, OpenAI and Anthropic
    keys): one identity, the key itself, and its one credential `<external id>#<suffix>` at the same place in the
    file. `credential` holds the credential's dates and state as the kind reads them."""
    parsed.identities.append(identity)
    parsed.credentials.append(
        CredentialRecord(
            external_id=f"{identity.external_id}#{suffix}",
            identity_external_id=identity.external_id,
            kind=kind,
            where=identity.where,
            **credential,
        )
    )
