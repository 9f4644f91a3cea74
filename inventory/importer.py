"""Bulk import: one JSON document of scopes, tools, identities, credentials and grants, upserted by natural key.

All or nothing. Built for tens of thousands of rows, so it is set-based: rows are checked in Python
against limits and choices read from the model fields, existing objects are fetched once per kind,
and writes are batched. The query count depends on the number of batches, never on the rows.

Upsert rules: a row matches an existing object by its natural key (scope `name`, tool `slug`,
identity `name`, credential identity + fingerprint, grant identity + scope + resource_constraint).
A field present in the row is set; a field left out keeps its current value (or the model default
on create), so an old file cannot wipe what usage events recorded since. Bindings between tools and
identities are only added, never removed. Re-importing a file changes nothing.
"""

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.validators import slug_re
from django.db import DataError, IntegrityError, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from nhi_portal import roles
from nhi_portal.exceptions import PortalError

from .choices import GrantStatus
from .models import AITool, AuditEntry, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity
from .secrets import FINGERPRINT_PREFIX, FINGERPRINT_RE, SecretDigest, digest_secret, validate_secret

User = get_user_model()

SECTIONS = ("scopes", "tools", "identities", "credentials", "grants")
MAX_ERRORS = 1000
BATCH_SIZE = 1000
# `__in` lists are split so that no single query carries more parameters than SQLite allows.
LOOKUP_CHUNK = 2000

Row = dict[str, Any]


class ImportRejected(PortalError):
    """The document has errors; nothing was written. `errors` lists each with its path."""

    def __init__(self, errors: list[dict[str, Any]], *, truncated: bool = False):
        super().__init__(f"The import has {len(errors)} error(s); nothing was changed.", field="errors")
        self.errors = errors
        self.truncated = truncated


@dataclass(frozen=True, slots=True)
class ImportResult:
    counts: dict[str, dict[str, int]]
    audit_entry_id: int


def document_error(message: str) -> dict[str, Any]:
    """An error about the document as a whole (not JSON, too large, wrong type), in the per-row shape."""
    return {"row": None, "section": None, "field": None, "path": "", "message": message}


class _Errors:
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

    def raise_if_any(self) -> None:
        if self.items:
            # Found in passes (shape, then references); reported in document order, which is easier to work through.
            order = {name: n for n, name in enumerate(SECTIONS)}
            self.items.sort(key=lambda e: (order.get(e["section"], -1), -1 if e["row"] is None else e["row"]))
            raise ImportRejected(self.items, truncated=self.truncated)


class _Invalid(Exception):
    """A field value is unacceptable. The message never repeats the value (it might be a secret)."""


def _echo(value: str) -> str:
    """A user-supplied name made safe to put in a JSON response: short, and encodable even with lone surrogates."""
    text = value if len(value) <= 80 else value[:77] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# Field parsers, built from the model fields so limits and choices stay in one place. Each takes the raw
# JSON value and returns the value to store, or raises _Invalid.
Parser = Callable[[Any], Any]


def _string(value: Any, *, max_length: int | None, blank: bool) -> str:
    if not isinstance(value, str):
        raise _Invalid("Must be a string.")
    # PostgreSQL rejects NUL and lone surrogates at write time; catching them here keeps bad input a 400.
    if "\x00" in value:
        raise _Invalid("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("Must be valid Unicode text.") from None
    if max_length is not None and len(value) > max_length:
        raise _Invalid(f"Must be at most {max_length} characters.")
    if not blank and not value:
        raise _Invalid("Must not be blank.")
    return value


def _text(model: type[models.Model], name: str) -> Parser:
    f = model._meta.get_field(name)
    if f.choices:
        allowed = {value for value, _ in f.choices}
        message = "Must be one of: " + ", ".join(sorted(allowed)) + "."

        def parse_choice(value: Any) -> str:
            # Type first: a list or object in the file is unhashable and would break the set lookup.
            if not isinstance(value, str) or value not in allowed:
                raise _Invalid(message)
            return value

        return parse_choice
    slug = isinstance(f, models.SlugField)

    def parse(value: Any) -> str:
        value = _string(value, max_length=f.max_length, blank=f.blank)
        if slug and not slug_re.match(value):
            raise _Invalid("Must be a slug: letters, numbers, hyphens or underscores.")
        return value

    return parse


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("Must be true or false.")
    return value


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid("Must be an ISO 8601 date-time string or null.")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise _Invalid("Must be an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z.")
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

    def parse(value: Any) -> list[str | _Invalid]:
        if not isinstance(value, list):
            raise _Invalid("Must be a list.")
        out: list[str | _Invalid] = []
        for one in value:
            try:
                out.append(item(one))
            except _Invalid as exc:
                out.append(exc)
        return out

    return parse


def _secret(value: Any) -> SecretDigest:
    # Fingerprinted here and dropped: only the digest travels further. No message repeats the secret.
    if not isinstance(value, str):
        raise _Invalid("Must be a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("Must be valid Unicode text.") from None
    problem = validate_secret(value)
    if problem:
        raise _Invalid(problem)
    return digest_secret(value)


def _fingerprint(value: Any) -> str:
    # Only our own keyed digests are accepted, so a secret pasted into the wrong field is refused, not stored.
    if not isinstance(value, str) or not FINGERPRINT_RE.match(value):
        raise _Invalid(f"Must be a fingerprint as the portal computes it: '{FINGERPRINT_PREFIX}' and 64 hex digits.")
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


def _parse_section(section: str, rows: list[Any], errors: _Errors) -> list[Row | None]:
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
            errors.add(section, i, _echo(name), "Unknown field. Allowed: " + ", ".join(spec) + ".")
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
            except _Invalid as exc:
                errors.add(section, i, name, str(exc))
        parsed.append(clean)
    return parsed


def _credential_fingerprints(rows: list[Row | None], errors: _Errors) -> None:
    for i, row in _rows(rows):
        digest = row.pop("secret", None)
        if digest is not None and ("fingerprint" in row or "last4" in row):
            errors.add("credentials", i, "secret", "Give either the secret or its fingerprint and last4, not both.")
        elif digest is not None:
            row["fingerprint"], row["last4"] = digest.fingerprint, digest.last4
        elif not {"secret", "fingerprint"} & row["_given"]:
            errors.add("credentials", i, "secret", "Give the secret (fingerprinted, then dropped) or its fingerprint.")


def _rows(rows: list[Row | None]) -> Iterator[tuple[int, Row]]:
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


def _check_duplicates(section: str, rows: list[Row | None], errors: _Errors) -> None:
    seen: dict[tuple, int] = {}
    for i, row in _rows(rows):
        key = _natural_key(section, row)
        if key is None:
            continue
        if key in seen:
            names = " + ".join(NATURAL_KEYS[section])
            errors.add(section, i, NATURAL_KEYS[section][-1], f"Duplicate of {section}[{seen[key]}] ({names}).")
        else:
            seen[key] = i


def _fetch(queryset: models.QuerySet, lookup: str, values: Iterable) -> list:
    values = sorted(set(values), key=str)
    found: list = []
    for start in range(0, len(values), LOOKUP_CHUNK):
        found.extend(queryset.filter(**{f"{lookup}__in": values[start : start + LOOKUP_CHUNK]}))
    return found


@dataclass
class _Upsert:
    """Rows of one kind sorted into creates, updates and unchanged, by natural key.

    Existing rows come in as dicts from `.values()`: model instances are built only for rows that are
    written, which keeps re-importing a large, unchanged file cheap.
    """

    model: type[models.Model]
    pks: dict[tuple, int] = field(default_factory=dict)
    created: list[tuple[tuple, models.Model]] = field(default_factory=list)
    updated: list[models.Model] = field(default_factory=list)
    changed_fields: set[str] = field(default_factory=set)
    unchanged: int = 0

    def put(self, key: tuple, existing: dict[str, Any] | None, values: dict[str, Any]) -> None:
        if existing is None:
            self.created.append((key, self.model(**values)))
            return
        self.pks[key] = existing["id"]
        changed = [name for name, value in values.items() if existing[name] != value]
        if changed:
            self.changed_fields.update(changed)
            self.updated.append(self.model(**(existing | values)))
        else:
            self.unchanged += 1

    def save(self, now: datetime) -> dict[str, int]:
        self.model.objects.bulk_create([obj for _, obj in self.created], batch_size=BATCH_SIZE)
        # Both supported databases return the new ids from a bulk insert.
        self.pks.update((key, obj.pk) for key, obj in self.created)
        if self.updated:
            fields = sorted(self.changed_fields)
            # bulk_update skips auto_now, so the change time is set here.
            if any(f.name == "updated_at" for f in self.model._meta.concrete_fields):
                for obj in self.updated:
                    obj.updated_at = now
                fields.append("updated_at")
            self.model.objects.bulk_update(self.updated, fields, batch_size=BATCH_SIZE)
        return {"created": len(self.created), "updated": len(self.updated), "unchanged": self.unchanged}


def _values(row: Row, names: Iterable[str]) -> dict[str, Any]:
    return {name: row[name] for name in names if name in row}


def inventory_import(*, actor, document: dict[str, Any]) -> ImportResult:
    """Validate the whole document, then upsert it in one transaction with one summary audit entry.

    Raises ImportRejected with every error found (up to MAX_ERRORS) if anything is wrong; then nothing is written.
    """
    if not roles.is_security(actor):
        raise PermissionDenied("Only security can import the inventory.")
    # Callers hand over whatever the JSON parsed to, so the type is checked rather than assumed.
    if not isinstance(document, dict):
        raise ImportRejected([document_error("The document must be a JSON object with lists under " + _keys_text())])
    errors = _Errors()
    sections: dict[str, list[Row | None]] = {}
    for name in sorted(document.keys() - set(SECTIONS), key=str):
        errors.add(_echo(str(name)), None, None, "Unknown section. Allowed: " + _keys_text())
    for name in SECTIONS:
        rows = document.get(name, [])
        if not isinstance(rows, list):
            errors.add(name, None, None, "Must be a list of objects.")
            rows = []
        sections[name] = _parse_section(name, rows, errors)
    _credential_fingerprints(sections["credentials"], errors)
    for _, row in _rows(sections["grants"]):
        # Part of the grant's natural key; left out, it means "any resource", as the model's blank does.
        row.setdefault("resource_constraint", "")
    for name in SECTIONS:
        _check_duplicates(name, sections[name], errors)
    try:
        with transaction.atomic():
            rows = {name: list(_rows(sections[name])) for name in SECTIONS}
            known = _look_up(rows)
            _check_references(rows, known, errors)
            errors.raise_if_any()
            counts = _write(rows, known, timezone.now())
            entry = AuditEntry.objects.create(
                actor=actor,
                actor_label=actor.get_username(),
                action="inventory.imported",
                object_type="inventory.import",
                object_id=uuid.uuid4().hex,
                object_repr="Bulk import: " + ", ".join(f"{n} {k}" for k, n in _row_counts(sections).items()),
                after={"counts": counts},
            )
    except (IntegrityError, DataError):
        # Only a concurrent write can get here: everything the database checks was checked above.
        raise ImportRejected(
            [document_error("The database refused the import, most likely because of a concurrent change. Retry.")]
        ) from None
    return ImportResult(counts=counts, audit_entry_id=entry.pk)


def _keys_text() -> str:
    return ", ".join(SECTIONS) + "."


def _row_counts(sections: dict[str, list[Row | None]]) -> dict[str, int]:
    return {name: len(rows) for name, rows in sections.items() if rows}


@dataclass
class _Known:
    """What the database already holds for every natural key the document mentions, one query per kind."""

    users: dict[str, Any]
    teams: dict[str, Team]
    taken_team_names: set[str]
    # Field values by natural key, as `.values()` gives them.
    scopes: dict[str, dict[str, Any]]
    tools: dict[str, dict[str, Any]]
    identities: dict[str, dict[str, Any]]


def _look_up(rows: dict[str, list[tuple[int, Row]]]) -> _Known:
    tools, identities, grants = rows["tools"], rows["identities"], rows["grants"]
    owner_names = {row["owner"] for _, row in tools + identities if "owner" in row}
    team_slugs = {row["team"] for _, row in tools if row.get("team")}
    teams = {t.slug: t for t in _fetch(Team.objects.all(), "slug", team_slugs)}
    scope_names = {row["name"] for _, row in rows["scopes"] if "name" in row}
    scope_names |= {row["scope"] for _, row in grants if "scope" in row}
    tool_slugs = {row["slug"] for _, row in tools if "slug" in row}
    tool_slugs |= {s for _, row in identities for s in row.get("tools", []) if isinstance(s, str)}
    tool_slugs |= {row["tool"] for _, row in grants if row.get("tool")}
    identity_names = {row["name"] for _, row in identities if "name" in row}
    identity_names |= {n for _, row in tools for n in row.get("identities", []) if isinstance(n, str)}
    identity_names |= {row["identity"] for _, row in rows["credentials"] + grants if "identity" in row}
    return _Known(
        users={
            u.username: u for u in _fetch(User.objects.only("pk", "username", "is_active"), "username", owner_names)
        },
        teams=teams,
        # A new team is named after its slug, which must not collide with another team's name.
        taken_team_names={t.name for t in _fetch(Team.objects.all(), "name", team_slugs - teams.keys())},
        scopes={s["name"]: s for s in _fetch(Scope.objects.values(), "name", scope_names)},
        tools={t["slug"]: t for t in _fetch(AITool.objects.values(), "slug", tool_slugs)},
        identities={i["name"]: i for i in _fetch(ServiceIdentity.objects.values(), "name", identity_names)},
    )


def _check_references(rows: dict[str, list[tuple[int, Row]]], known: _Known, errors: _Errors) -> None:
    # What the document itself creates counts as existing for references made elsewhere in it.
    any_tool = known.tools.keys() | {row["slug"] for _, row in rows["tools"] if "slug" in row}
    any_identity = known.identities.keys() | {row["name"] for _, row in rows["identities"] if "name" in row}
    any_scope = known.scopes.keys() | {row["name"] for _, row in rows["scopes"] if "name" in row}

    def check(section: str, i: int, name: str, value: Any, existing: set[str], what: str, index=None) -> None:
        if isinstance(value, str) and value not in existing:
            errors.add(section, i, name, f"No {what} '{_echo(value)}' exists or is in this file.", index=index)

    for section, ref_name, existing, what in (
        ("tools", "identities", any_identity, "identity"),
        ("identities", "tools", any_tool, "tool"),
    ):
        for i, row in rows[section]:
            user = known.users.get(row.get("owner"))
            if "owner" in row and (user is None or not user.is_active):
                errors.add(section, i, "owner", f"No active user '{_echo(row['owner'])}'.")
            if row.get("team") in known.taken_team_names:
                errors.add(section, i, "team", "A team with this name but another slug exists; use its slug.")
            for n, ref in enumerate(row.get(ref_name, [])):
                if isinstance(ref, _Invalid):
                    errors.add(section, i, ref_name, str(ref), index=n)
                else:
                    check(section, i, ref_name, ref, existing, what, n)
    for section in ("credentials", "grants"):
        for i, row in rows[section]:
            check(section, i, "identity", row.get("identity"), any_identity, "identity")
            check(section, i, "scope", row.get("scope"), any_scope, "scope")
            check(section, i, "tool", row.get("tool"), any_tool, "tool")


def _write(rows: dict[str, list[tuple[int, Row]]], known: _Known, now: datetime) -> dict[str, dict[str, int]]:
    """Write in dependency order, each kind in batches; created objects get their ids from the insert."""
    counts: dict[str, dict[str, int]] = {}
    team_slugs = {row["team"] for _, row in rows["tools"] if row.get("team")}
    new_teams = [Team(slug=slug, name=slug) for slug in sorted(team_slugs - known.teams.keys())]
    Team.objects.bulk_create(new_teams, batch_size=BATCH_SIZE)
    teams = known.teams | {t.slug: t for t in new_teams}
    counts["teams"] = {"created": len(new_teams), "updated": 0, "unchanged": len(team_slugs) - len(new_teams)}

    upsert = _Upsert(Scope)
    for _, row in rows["scopes"]:
        upsert.put((row["name"],), known.scopes.get(row["name"]), _values(row, SPECS["scopes"]))
    counts["scopes"] = upsert.save(now)
    scopes = {name: s["id"] for name, s in known.scopes.items()} | {key[0]: pk for key, pk in upsert.pks.items()}

    upsert = _Upsert(AITool)
    for _, row in rows["tools"]:
        values = _values(row, [name for name in SPECS["tools"] if name not in ("owner", "team", "identities")])
        values["owner_id"] = known.users[row["owner"]].pk
        if "team" in row:
            values["team_id"] = teams[row["team"]].pk if row["team"] else None
        upsert.put((row["slug"],), known.tools.get(row["slug"]), values)
    counts["tools"] = upsert.save(now)
    tools = {slug: t["id"] for slug, t in known.tools.items()} | {key[0]: pk for key, pk in upsert.pks.items()}

    upsert = _Upsert(ServiceIdentity)
    for _, row in rows["identities"]:
        values = _values(row, [name for name in SPECS["identities"] if name not in ("owner", "tools")])
        values["owner_id"] = known.users[row["owner"]].pk
        upsert.put((row["name"],), known.identities.get(row["name"]), values)
    counts["identities"] = upsert.save(now)
    identities = {name: i["id"] for name, i in known.identities.items()}
    identities |= {key[0]: pk for key, pk in upsert.pks.items()}

    counts["bindings"] = _write_bindings(rows["tools"], rows["identities"], tools, identities)
    counts["credentials"] = _write_credentials(rows["credentials"], identities, now)
    counts["grants"] = _write_grants(rows["grants"], identities, scopes, tools, now)
    return counts


def _write_bindings(tools, identities, tool_pks: dict[str, int], identity_pks: dict[str, int]) -> dict[str, int]:
    pairs = {(tool_pks[row["slug"]], identity_pks[name]) for _, row in tools for name in row.get("identities", [])}
    pairs |= {(tool_pks[slug], identity_pks[row["name"]]) for _, row in identities for slug in row.get("tools", [])}
    existing = set(_fetch(ToolIdentity.objects.values_list("tool_id", "identity_id"), "tool", {t for t, _ in pairs}))
    new = [ToolIdentity(tool_id=t, identity_id=i) for t, i in sorted(pairs - existing)]
    ToolIdentity.objects.bulk_create(new, batch_size=BATCH_SIZE)
    return {"created": len(new), "updated": 0, "unchanged": len(pairs) - len(new)}


def _write_credentials(rows, identity_pks: dict[str, int], now: datetime) -> dict[str, int]:
    queryset = Credential.objects.values()
    existing = {
        (c["identity_id"], c["fingerprint"]): c for c in _fetch(queryset, "identity", _pks_of(rows, identity_pks))
    }
    upsert = _Upsert(Credential)
    for _, row in rows:
        values = _values(row, [name for name in SPECS["credentials"] if name not in ("identity", "secret")])
        values["identity_id"] = identity_pks[row["identity"]]
        key = (values["identity_id"], row["fingerprint"])
        if key not in existing:
            values.setdefault("created_at", now)
        upsert.put(key, existing.get(key), values)
    return upsert.save(now)


def _write_grants(rows, identity_pks, scope_pks, tool_pks, now: datetime) -> dict[str, int]:
    found = _fetch(ScopeGrant.objects.values(), "identity", _pks_of(rows, identity_pks))
    # Revoked and expired grants may repeat a key: the active one wins, then the newest. Sorted so it comes last.
    found.sort(key=lambda grant: (grant["status"] == GrantStatus.ACTIVE, grant["id"]))
    existing = {(g["identity_id"], g["scope_id"], g["resource_constraint"]): g for g in found}
    upsert = _Upsert(ScopeGrant)
    for _, row in rows:
        values = _values(row, ("resource_constraint", "status", "granted_at", "expires_at", "last_used_at"))
        values |= _values(row, ("revoked_at", "revoke_reason"))
        values["identity_id"], values["scope_id"] = identity_pks[row["identity"]], scope_pks[row["scope"]]
        if "tool" in row:
            values["tool_id"] = tool_pks[row["tool"]] if row["tool"] else None
        key = (values["identity_id"], values["scope_id"], row["resource_constraint"])
        if key not in existing:
            values.setdefault("granted_at", now)
        upsert.put(key, existing.get(key), values)
    return upsert.save(now)


def _pks_of(rows, identity_pks: dict[str, int]) -> set[int]:
    return {identity_pks[row["identity"]] for _, row in rows}
