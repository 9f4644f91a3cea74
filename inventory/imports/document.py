"""Bulk import: one JSON document of scopes, tools, identities, credentials and grants, upserted by natural key.

All or nothing. Built for tens of thousands of rows, so it is set-based: rows are checked in Python
against limits and choices read from the model fields, existing objects are fetched once per kind,
and writes are batched. The query count depends on the number of batches, never on the rows.

Upsert rules: a row matches an existing object by its natural key (scope `name`, tool `slug`,
identity `name`, credential identity + fingerprint, grant identity + scope + resource_constraint).
A field present in the row is set; a field left out keeps its current value (or the model default
on create), so an old file cannot wipe what usage events recorded since. Bindings between tools and
identities are only added, never removed. Re-importing a file changes nothing.

Governance rules: an import records what the source shows; it never grants and never undoes a revocation.
- A revoked credential or grant stays revoked. Changes the row asks for to its `status`, `revoked_at` or
  `revoke_reason` are dropped with a warning naming the row; its other fields apply as usual.
- A grant row saying `active` whose key matches only a revoked grant (the upsert prefers the active grant of
  a key, so there is none) becomes a new grant, observed at the source, beside the untouched revoked one, with
  a warning. Recording it is safe because an imported grant has no approval record and so authorizes nothing
  (authorize denies it as `grant_unapproved`, and the detector of that name reports it); it keeps the
  inventory true to the source. Expired grants are not revocations: an unapproved one may be set active again.
- A grant issued by an approved request (it has an `approvals.GrantIssue`, or the approval the workflow stamps
  on the grant) takes only `last_used_at` and a revocation from an import; other changes are dropped with a
  warning, so a file cannot stretch an approval. The import never writes anything in approvals, nor a grant's
  approval fields.
- Revoking by import (an active grant whose row says `revoked`) is allowed; `revoked_at` defaults to now.
- One audit entry sums up the import (counts and warnings), and one more is written for each object created
  or changed, with the changed fields before and after (`inventory.imports.audit`); unchanged objects get none.
- One-line text (every CharField) refuses control characters; multi-line text keeps newlines and tabs.

This module runs an import; `imports.rows` reads the document, `imports.store` looks up and writes, and
`imports.audit` turns what was written into the per-object audit entries.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from inventory.audit.record import audit_changes
from inventory.changes import changes_record_query
from inventory.imports.rows import (
    MAX_ERRORS,
    SECTIONS,
    ImportRejected,
    Invalid,
    Messages,
    Row,
    check_duplicates,
    credential_fingerprints,
    document_error,
    echo,
    numbered,
    parse_section,
)
from inventory.imports.store import BATCH_SIZE, Known, Writing, look_up, write
from inventory.models import AITool, AuditEntry, DetectionChange, ServiceIdentity
from nhi_portal import roles

# Re-exported: the API and the command take these from here.
__all__ = ["MAX_ERRORS", "ImportRejected", "ImportResult", "document_error", "inventory_import"]


@dataclass(frozen=True, slots=True)
class ImportResult:
    counts: dict[str, dict[str, int]]
    audit_entry_id: int
    # Changes the import refused to make while applying the rest of the row; same shape as errors.
    warnings: list[dict[str, Any]] = field(default_factory=list)
    warnings_truncated: bool = False


def inventory_import(*, actor, document: dict[str, Any]) -> ImportResult:
    """Validate the whole document, then upsert it in one transaction with its audit entries.

    Raises ImportRejected with every error found (up to MAX_ERRORS) if anything is wrong; then nothing is written.
    Changes the governance rules (module docstring) refuse are left out of an otherwise applied row and reported
    in `warnings`.
    """
    if not roles.is_security(actor):
        raise PermissionDenied("Only security can import the inventory.")
    # Callers hand over whatever the JSON parsed to, so the type is checked rather than assumed.
    if not isinstance(document, dict):
        raise ImportRejected([document_error("The document must be a JSON object with lists under " + _keys_text())])
    errors = Messages()
    sections: dict[str, list[Row | None]] = {}
    for name in sorted(document.keys() - set(SECTIONS), key=str):
        errors.add(echo(str(name)), None, None, "Unknown section. Allowed: " + _keys_text())
    for name in SECTIONS:
        rows = document.get(name, [])
        if not isinstance(rows, list):
            errors.add(name, None, None, "Must be a list of objects.")
            rows = []
        sections[name] = parse_section(name, rows, errors)
    credential_fingerprints(sections["credentials"], errors)
    for _, row in numbered(sections["grants"]):
        # Part of the grant's natural key; left out, it means "any resource", as the model's blank does.
        row.setdefault("resource_constraint", "")
    for name in SECTIONS:
        check_duplicates(name, sections[name], errors)
    import_id = uuid.uuid4().hex
    try:
        with transaction.atomic():
            rows = {name: list(numbered(sections[name])) for name in SECTIONS}
            known = look_up(rows)
            _check_references(rows, known, errors)
            errors.raise_if_any()
            writing = Writing(now=timezone.now(), warnings=Messages(), actor=actor)
            counts = write(rows, known, writing)
            warnings = writing.warnings.in_document_order()
            # The comment ties each object's entry to the summary entry below.
            comment = f"Bulk import {import_id}"
            audit_changes(actor=actor, changes=writing.changes, comment=comment, batch_size=BATCH_SIZE)
            if writing.changes:  # a re-import that changes nothing writes nothing, and queues nothing
                _queue_detection(rows, writing.now)
            entry = AuditEntry.objects.create(
                actor=actor,
                actor_label=actor.get_username(),
                action="inventory.imported",
                object_type="inventory.import",
                object_id=import_id,
                object_repr="Bulk import: " + ", ".join(f"{n} {k}" for k, n in _row_counts(sections).items()),
                after={"counts": counts, "warnings": warnings, "objects_audited": len(writing.changes)},
            )
    except (IntegrityError, DataError):
        # Only a concurrent write can get here: everything the database checks was checked above.
        raise ImportRejected(
            [document_error("The database refused the import, most likely because of a concurrent change. Retry.")]
        ) from None
    return ImportResult(
        counts=counts, audit_entry_id=entry.pk, warnings=warnings, warnings_truncated=writing.warnings.truncated
    )


def _queue_detection(rows: dict[str, list[tuple[int, Row]]], now) -> None:
    """Every tool and identity the document names is a changed subject: one targeted detection run after commit
    (set-based, however many rows), so an import that reveals an exposure opens its finding now, not at night."""
    slugs = {row.get("slug") for _, row in rows["tools"]} | {row.get("tool") for _, row in rows["grants"]}
    names = {row.get("name") for _, row in rows["identities"]}
    names |= {row.get("identity") for section in ("credentials", "grants") for _, row in rows[section]}
    slugs, names = {s for s in slugs if isinstance(s, str)}, {n for n in names if isinstance(n, str)}
    if slugs:
        tools = AITool.objects.filter(slug__in=slugs)
        tool_key = DetectionChange.KeyType.TOOL
        changes_record_query(topic="tool", key_type=tool_key, rows=tools, field="pk", observed_at=now)
    if names:
        identities = ServiceIdentity.objects.filter(name__in=names)
        for topic in ("identity", "credential", "grant"):
            changes_record_query(
                topic=topic, key_type=DetectionChange.KeyType.IDENTITY, rows=identities, field="pk", observed_at=now
            )


def _keys_text() -> str:
    return ", ".join(SECTIONS) + "."


def _row_counts(sections: dict[str, list[Row | None]]) -> dict[str, int]:
    return {name: len(rows) for name, rows in sections.items() if rows}


def _check_references(rows: dict[str, list[tuple[int, Row]]], known: Known, errors: Messages) -> None:
    # What the document itself creates counts as existing for references made elsewhere in it.
    any_tool = known.tools.keys() | {row["slug"] for _, row in rows["tools"] if "slug" in row}
    any_identity = known.identities.keys() | {row["name"] for _, row in rows["identities"] if "name" in row}
    any_scope = known.scopes.keys() | {row["name"] for _, row in rows["scopes"] if "name" in row}

    def check(section: str, i: int, name: str, value: Any, existing: set[str], what: str, index=None) -> None:
        if isinstance(value, str) and value not in existing:
            errors.add(section, i, name, f"No {what} '{echo(value)}' exists or is in this file.", index=index)

    for section, ref_name, existing, what in (
        ("tools", "identities", any_identity, "identity"),
        ("identities", "tools", any_tool, "tool"),
    ):
        for i, row in rows[section]:
            user = known.users.get(row.get("owner"))
            if "owner" in row and (user is None or not user.is_active):
                errors.add(section, i, "owner", f"No active user '{echo(row['owner'])}'.")
            if row.get("team") in known.taken_team_names:
                errors.add(section, i, "team", "A team with this name but another slug exists; use its slug.")
            for n, ref in enumerate(row.get(ref_name, [])):
                if isinstance(ref, Invalid):
                    errors.add(section, i, ref_name, str(ref), index=n)
                else:
                    check(section, i, ref_name, ref, existing, what, n)
    for section in ("credentials", "grants"):
        for i, row in rows[section]:
            check(section, i, "identity", row.get("identity"), any_identity, "identity")
            check(section, i, "scope", row.get("scope"), any_scope, "scope")
            check(section, i, "tool", row.get("tool"), any_tool, "tool")
