"""Reading an import document: each row's shape and values checked against the model fields, without the database.

Limits and choices come from the model fields, so they stay in one place. Every problem is collected with its
row and path (a whole document's worth, up to MAX_ERRORS) rather than stopping at the first; a message never
repeats a value, which might be a secret.
"""

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.validators import slug_re
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inventory.fingerprints import FINGERPRINT_PREFIX, FINGERPRINT_RE, SecretDigest, digest_secret, validate_secret
from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team
from nhi_portal.exceptions import PortalError

User = get_user_model()

SECTIONS = ("scopes", "tools", "identities", "credentials", "grants")
MAX_ERRORS = 1000

Row = dict[str, Any]


class ImportRejected(PortalError):
    """The document has errors; nothing was written. `errors` lists each with its path."""

    def __init__(self, errors: list[dict[str, Any]], *, truncated: bool = False):
        super().__init__(f"The import has {len(errors)} error(s); nothing was changed.", field="errors")
        self.errors = errors
        self.truncated = truncated


def document_error(message: str) -> dict[str, Any]:
    """An error about the document as a whole (not JSON, too large, wrong type), in the per-row shape."""
    return {"row": None, "section": None, "field": None, "path": "", "message": message}


class Messages:
    """Errors (or warnings) with the row and path they concern, capped at MAX_ERRORS."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.truncated = False

    def add(self, section: str, row: int | None, name: str | None, message: str, *, index: int | None = None) -> None:
        if len(self.items) >= MAX_ERRORS:
            self.truncated = True
            return
        path = section if row is None else f"{section}[{row}]"
        if name:
            path += f".{name}"
        if index is not None:
            path += f"[{index}]"
        self.items.append({"row": row, "section": section, "field": name, "path": path, "message": message})

    def in_document_order(self) -> list[dict[str, Any]]:
        # Found in passes (shape, then references); reported in document order, which is easier to work through.
        order = {name: n for n, name in enumerate(SECTIONS)}
        return sorted(self.items, key=lambda e: (order.get(e["section"], -1), -1 if e["row"] is None else e["row"]))

    def raise_if_any(self) -> None:
        if self.items:
            raise ImportRejected(self.in_document_order(), truncated=self.truncated)


class Invalid(Exception):
    """A field value is unacceptable. The message never repeats the value (it might be a secret)."""


# C0 and C1 controls, DEL and the Unicode line and paragraph separators (what the models' own name validators
# refuse too). In one-line text they break or rewrite the line the value is shown on (a table cell, a CSV row, a
# log line, a terminal), so such fields refuse them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Multi-line text keeps its line breaks and tabs; every other control character is refused there too.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def echo(value: str) -> str:
    """A user-supplied name made safe to put in a JSON response or a terminal: short, encodable, no control bytes."""
    text = value if len(value) <= 80 else value[:77] + "..."
    text = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# Field parsers, built from the model fields so limits and choices stay in one place. Each takes the raw
# JSON value and returns the value to store, or raises Invalid.
Parser = Callable[[Any], Any]


def _string(value: Any, *, max_length: int | None, blank: bool, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid("Must be a string.")
    # PostgreSQL rejects NUL and lone surrogates at write time; catching them here keeps bad input a 400.
    if "\x00" in value:
        raise Invalid("Must not contain NUL characters.")
    if (_TEXT_CONTROL if multiline else _CONTROL).search(value):
        raise Invalid("Must not contain control characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("Must be valid Unicode text.") from None
    if max_length is not None and len(value) > max_length:
        raise Invalid(f"Must be at most {max_length} characters.")
    if not blank and not value:
        raise Invalid("Must not be blank.")
    return value


def _text(model: type[models.Model], name: str) -> Parser:
    f = model._meta.get_field(name)
    if f.choices:
        allowed = {value for value, _ in f.choices}
        message = "Must be one of: " + ", ".join(sorted(allowed)) + "."

        def parse_choice(value: Any) -> str:
            # Type first: a list or object in the file is unhashable and would break the set lookup.
            if not isinstance(value, str) or value not in allowed:
                raise Invalid(message)
            return value

        return parse_choice
    slug = isinstance(f, models.SlugField)
    multiline = isinstance(f, models.TextField)

    def parse(value: Any) -> str:
        value = _string(value, max_length=f.max_length, blank=f.blank, multiline=multiline)
        if slug and not slug_re.match(value):
            raise Invalid("Must be a slug: letters, numbers, hyphens or underscores.")
        return value

    return parse


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("Must be true or false.")
    return value


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("Must be an ISO 8601 date-time string or null.")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise Invalid("Must be an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z.")
    # Naive times are read in the portal's time zone, as forms and the API read them.
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


def _key(model: type[models.Model], name: str, *, nullable: bool = False) -> Parser:
    """A reference to another object by its natural key (username, slug, name)."""
    max_length = model._meta.get_field(name).max_length

    def parse(value: Any) -> str | None:
        if value is None and nullable:
            return None
        return _string(value, max_length=max_length, blank=False)

    return parse


def _keys(model: type[models.Model], name: str) -> Parser:
    """A list of natural keys; each bad item is reported on its own index."""
    item = _key(model, name)

    def parse(value: Any) -> list[str | Invalid]:
        if not isinstance(value, list):
            raise Invalid("Must be a list.")
        out: list[str | Invalid] = []
        for one in value:
            try:
                out.append(item(one))
            except Invalid as exc:
                out.append(exc)
        return out

    return parse


def _secret(value: Any) -> SecretDigest:
    # Fingerprinted here and dropped: only the digest travels further. No message repeats the secret.
    if not isinstance(value, str):
        raise Invalid("Must be a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("Must be valid Unicode text.") from None
    problem = validate_secret(value)
    if problem:
        raise Invalid(problem)
    return digest_secret(value)


def _fingerprint(value: Any) -> str:
    # Only our own keyed digests are accepted, so a secret pasted into the wrong field is refused, not stored.
    if not isinstance(value, str) or not FINGERPRINT_RE.match(value):
        raise Invalid(f"Must be a fingerprint as the portal computes it: '{FINGERPRINT_PREFIX}' and 64 hex digits.")
    return value


# Per section: field -> (parser, required). The key order is the order errors are reported in.
SPECS: dict[str, dict[str, tuple[Parser, bool]]] = {
    "scopes": {
        "name": (_text(Scope, "name"), True),
        "provider": (_text(Scope, "provider"), True),
        "risk": (_text(Scope, "risk"), True),
        "sensitive": (_flag, False),
        "description": (_text(Scope, "description"), False),
    },
    "tools": {
        "slug": (_text(AITool, "slug"), True),
        "name": (_text(AITool, "name"), True),
        "kind": (_text(AITool, "kind"), True),
        "owner": (_key(User, "username"), True),
        "environment": (_text(AITool, "environment"), True),
        "vendor": (_text(AITool, "vendor"), False),
        "team": (_key(Team, "slug", nullable=True), False),
        "data_classification": (_text(AITool, "data_classification"), False),
        "status": (_text(AITool, "status"), False),
        "description": (_text(AITool, "description"), False),
        "enforces_authorization": (_flag, False),
        "identities": (_keys(ServiceIdentity, "name"), False),
    },
    "identities": {
        "name": (_text(ServiceIdentity, "name"), True),
        "kind": (_text(ServiceIdentity, "kind"), True),
        "provider": (_text(ServiceIdentity, "provider"), True),
        "owner": (_key(User, "username"), True),
        "environment": (_text(ServiceIdentity, "environment"), True),
        "external_id": (_text(ServiceIdentity, "external_id"), False),
        "third_party": (_flag, False),
        "status": (_text(ServiceIdentity, "status"), False),
        "last_used_at": (_moment, False),
        "interactive_use_seen": (_flag, False),
        "last_reviewed_at": (_moment, False),
        "tools": (_keys(AITool, "slug"), False),
    },
    "credentials": {
        "identity": (_key(ServiceIdentity, "name"), True),
        "kind": (_text(Credential, "kind"), True),
        "secret": (_secret, False),
        "fingerprint": (_fingerprint, False),
        "last4": (_text(Credential, "last4"), False),
        "storage": (_text(Credential, "storage"), False),
        "created_at": (_moment, False),
        "last_rotated_at": (_moment, False),
        "expires_at": (_moment, False),
        "last_used_at": (_moment, False),
        "revoked_at": (_moment, False),
    },
    "grants": {
        "identity": (_key(ServiceIdentity, "name"), True),
        "scope": (_key(Scope, "name"), True),
        "resource_constraint": (_text(ScopeGrant, "resource_constraint"), False),
        "tool": (_key(AITool, "slug", nullable=True), False),
        "status": (_text(ScopeGrant, "status"), False),
        "granted_at": (_moment, False),
        "expires_at": (_moment, False),
        "last_used_at": (_moment, False),
        "revoked_at": (_moment, False),
        "revoke_reason": (_text(ScopeGrant, "revoke_reason"), False),
    },
}
# Datetimes the model requires: a new row without one gets the import's start time.
NOT_NULL_MOMENTS = {"created_at", "granted_at"}


def parse_section(section: str, rows: list[Any], errors: Messages) -> list[Row | None]:
    """Check every row's shape and values. Rows keep their good fields so references are still checked."""
    spec = SPECS[section]
    parsed: list[Row | None] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.add(section, i, None, "Each row must be a JSON object.")
            parsed.append(None)
            continue
        # `_given` remembers which fields were sent, even those that failed to parse.
        clean: Row = {"_given": frozenset(row)}
        for name in sorted(row.keys() - spec.keys(), key=str):
            errors.add(section, i, echo(name), "Unknown field. Allowed: " + ", ".join(spec) + ".")
        for name, (parse, required) in spec.items():
            if name not in row:
                if required:
                    errors.add(section, i, name, "This field is required.")
                continue
            if row[name] is None and name in NOT_NULL_MOMENTS:
                errors.add(section, i, name, "Must not be null.")
                continue
            try:
                clean[name] = parse(row[name])
            except Invalid as exc:
                errors.add(section, i, name, str(exc))
        parsed.append(clean)
    return parsed


def credential_fingerprints(rows: list[Row | None], errors: Messages) -> None:
    for i, row in numbered(rows):
        digest = row.pop("secret", None)
        if digest is not None and ("fingerprint" in row or "last4" in row):
            errors.add("credentials", i, "secret", "Give either the secret or its fingerprint and last4, not both.")
        elif digest is not None:
            row["fingerprint"], row["last4"] = digest.fingerprint, digest.last4
        elif not {"secret", "fingerprint"} & row["_given"]:
            errors.add("credentials", i, "secret", "Give the secret (fingerprinted, then dropped) or its fingerprint.")


def numbered(rows: list[Row | None]) -> Iterator[tuple[int, Row]]:
    return ((i, row) for i, row in enumerate(rows) if row is not None)


NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "scopes": ("name",),
    "tools": ("slug",),
    "identities": ("name",),
    "credentials": ("identity", "fingerprint"),
    "grants": ("identity", "scope", "resource_constraint"),
}


def _natural_key(section: str, row: Row) -> tuple | None:
    names = NATURAL_KEYS[section]
    if not all(name in row for name in names):
        return None
    return tuple(row[name] for name in names)


def check_duplicates(section: str, rows: list[Row | None], errors: Messages) -> None:
    seen: dict[tuple, int] = {}
    for i, row in numbered(rows):
        key = _natural_key(section, row)
        if key is None:
            continue
        if key in seen:
            names = " + ".join(NATURAL_KEYS[section])
            errors.add(section, i, NATURAL_KEYS[section][-1], f"Duplicate of {section}[{seen[key]}] ({names}).")
        else:
            seen[key] = i
