"""Applying any source kind's export to the inventory: the one place for the sync rules.

- A run: every applied import is a `SourceRun` with its counts, warnings, actor and the file's SHA-256.
- Upsert by `(provider, external_id)`: each identity and credential is found again through its provenance
  (`SourceObject`), or, the first time, an identity registered by hand with the same provider and external id is
  adopted. Provenance says which source and account listed it, first and last seen there.
- Unchanged rows are recognised by the digest of what the source said last time, without reading the object: a
  re-import of an unchanged file reads the provenance and writes nothing (not even a run: there is nothing to record).
- `full`: what this kind and account listed before and no longer lists is gone at the source. A credential is
  revoked, with the reason on its provenance and in its audit entry; an identity is disabled. Nothing is deleted.
- Never un-revoke: a credential the source lists as live again stays revoked, with a warning.
- Lowering a governed fact (a vendor identity no longer third-party) is held for review, as every path does.
- A dry run does all of it inside a transaction that is rolled back: the same counts, nothing changed.
- Every object created or changed gets an audit entry with before and after, plus one summary entry per run.
- All or nothing: any error in the file rejects it whole, naming the line or path and the field.
- Observed permissions stay facts on the provenance (`attributes`); the import never creates a grant or approval.
- Owners: the owner the file names, matched to a portal user by username or e-mail; otherwise the identity goes to
  the Unassigned queue (owned by the inactive `unassigned` account, so the orphan detector reports it).

Streaming and set-based: records are read, looked up (by key, per 5,000) and written (`bulk`: COPY on PostgreSQL)
10,000 at a time, audit entries included, so memory stays flat and the query count follows the chunks, not the rows.
"""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import DataError, IntegrityError, models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from inventory.audit.record import ObjectChange
from inventory.changes import source_run_committed
from inventory.choices import Environment, IdentityStatus
from inventory.facts import lowered
from inventory.models import AuditEntry, Credential, FactChange, ServiceIdentity, SourceObject, SourceRun, SubjectType
from nhi_portal import roles

from . import bulk, catalog
from .kinds import KINDS
from .records import CredentialRecord, IdentityRecord, Problems, SourceRejected, file_error
from .sync_rows import (
    credential_digest,
    credential_flags,
    identity_digest,
    identity_flags,
    json_safe,
    label,
    preview,
    source_fingerprint,
    updated_change,
)

User = get_user_model()

BATCH = 1000
# Keys per lookup query (an IN list the unique index answers).
CHUNK = 5000
# Records read, looked up and written together: each chunk costs a fixed number of round trips (lookups, id
# allocation, one COPY per table), so larger chunks mean fewer of them; memory grows with it (about 20 MB at 10,000).
RECORDS = 10_000
UNASSIGNED = "unassigned"
IDENTITY, CREDENTIAL = SourceObject.ObjectType.IDENTITY, SourceObject.ObjectType.CREDENTIAL
PREVIEW_LIMIT = 200
# Rows created by one import past which the tables' planner statistics are refreshed before commit. During the import
# they are refreshed each time it has doubled what they were last refreshed at, so its lookups keep their indexes.
ANALYZE_AFTER = 20_000
Record = IdentityRecord | CredentialRecord
_PLAIN = frozenset({str, int, bool, float})


@dataclass
class SourceResult:
    run: int | None
    kind: str
    dry_run: bool
    created: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]
    gone: dict[str, int]
    warnings: list[dict[str, Any]]
    # For the page's preview: the first changes, as the audit would record them.
    preview: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "kind": self.kind, "dry_run": self.dry_run, "created": self.created,
            "updated": self.updated, "unchanged": self.unchanged, "gone": self.gone, "warnings": self.warnings,
        }  # fmt: skip


class _RolledBack(Exception):
    """Ends a dry run's transaction after the counts are known."""

    def __init__(self, result: SourceResult):
        self.result = result


def unassigned_owner():
    """The inactive account that holds what no file attributes to anyone: the Unassigned queue."""
    user, created = User.objects.get_or_create(username=UNASSIGNED, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def source_import(
    *, actor, kind: str, raw: bytes, dry_run: bool = False, full: bool = False, account: str = "", origin: str = ""
) -> SourceResult:
    """Parse `raw` as `kind` and apply it; raises SourceRejected (nothing changed) on any error. `origin` says, in the
    run's audit entry, what fetched the file when it was not a person (`pull:<name>` for a live pull)."""
    if not roles.is_security(actor):
        raise PermissionDenied("Only security can import from sources.")
    module = KINDS.get(kind)
    if module is None:
        raise SourceRejected([file_error(f"Unknown source kind. Known: {', '.join(KINDS)}.")])
    _check_account(account)
    started = timezone.now()
    try:
        with transaction.atomic():
            sync = _Sync(actor=actor, kind=kind, provider=module.PROVIDER, account=account, now=started, full=full,
                         origin=origin)  # fmt: skip
            # Parsed and applied a chunk at a time; an error anywhere in the file rolls all of it back.
            result = sync.apply(_records(module, raw, account, sync.errors, sync.warnings), raw, dry_run=dry_run)
            if dry_run:
                raise _RolledBack(result)
    except _RolledBack as done:
        return done.result
    except (IntegrityError, DataError):
        # Only a concurrent write gets here: what the database checks was checked above.
        raise SourceRejected(
            [file_error("The database refused the import, most likely because of a concurrent change. Retry.")]
        ) from None
    return result


def _records(module, raw: bytes, account: str, errors: Problems, warnings: list) -> Iterator[Record]:
    """The file's records in order, each identity before its credentials. Kinds with a `stream` (the large ones:
    the AWS report, GCP key listings) yield as they read and record problems in `errors`; the others parse whole
    (raising on errors before anything is yielded)."""
    if hasattr(module, "stream"):
        yield from module.stream(raw, account=account, errors=errors, warnings=warnings)
        return
    parsed = module.parse(raw, account=account)
    warnings.extend(parsed.warnings)
    yield from parsed.identities
    yield from parsed.credentials


def _check_account(account: str) -> None:
    if len(account) > 200 or any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in account):
        raise SourceRejected([{"path": "", "field": "account", "message": "At most 200 characters, one line."}])


def _place(where: int | str | None) -> str:
    """Where an earlier entry is: its line (CSV) or JSON path, as `_Sync._check` keeps it."""
    return f"line {where}" if isinstance(where, int) else where or "the top"


def _chunks(values: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(slots=True)
class _Known:
    """A provenance row as the lookups read it."""

    pk: int
    identity_id: int
    credential_id: int | None
    digest: str
    gone_at: datetime | None
    kind: str
    account: str


class _Sync:
    """One import: consumes the records a chunk at a time, so memory stays flat whatever the file's size.

    Per chunk: check the records, look up their provenance by key, skip what the digest says is unchanged, then
    write what is new or changed and its audit entries (`bulk`: COPY on PostgreSQL) before reading on. Once the file
    has an error, nothing more is written (the transaction is rolled back at the end) and reading goes on only to name
    the rest of its errors."""

    def __init__(self, *, actor, kind: str, provider: str, account: str, now: datetime, full: bool, origin: str = ""):
        self.actor, self.kind, self.provider, self.account, self.now, self.full = (
            actor,
            kind,
            provider,
            account,
            now,
            full,
        )
        self.errors = Problems()
        self.warnings: list[dict[str, Any]] = []
        self.preview: list[dict[str, Any]] = []
        self.run: SourceRun | None = None
        self.counts = {
            name: {"identities": 0, "credentials": 0} for name in ("created", "updated", "unchanged", "gone")
        }
        # What this file lists, by external id: where (for duplicates) and, for identities, the portal's pk.
        self.listed: dict[str, dict[str, int | str | None]] = {IDENTITY: {}, CREDENTIAL: {}}
        self.identity_pks: dict[str, int] = {}
        self._unassigned: int | None = None
        self._unsourced: dict[str, int] | None = None
        self._analyzed_at = 0
        self._said: dict[str, dict[str, str]] = {}
        # What this kind and account listed before that the file lists again, and whether anything else is known.
        self._listed_before: dict[str, set[str]] = {IDENTITY: set(), CREDENTIAL: set()}
        self._elsewhere: dict[str, bool] = {}
        self._unassigned_pk: int | bool | None = False
        self._templates: dict[type[models.Model], list[tuple[str, str, Any, bool]]] = {}
        self.origin = origin

    def apply(self, records: Iterable[Record], raw: bytes, *, dry_run: bool) -> SourceResult:
        self.dry_run = dry_run
        self.file_digest, self.file_bytes = hashlib.sha256(raw).hexdigest(), len(raw)
        records = iter(records)
        while chunk := list(islice(records, RECORDS)):
            identities = [r for r in chunk if isinstance(r, IdentityRecord)]
            credentials = [r for r in chunk if not isinstance(r, IdentityRecord)]
            self._check(IDENTITY, identities, ServiceIdentity._meta.get_field("external_id").max_length)
            self._check(CREDENTIAL, credentials, SourceObject._meta.get_field("external_id").max_length)
            if self.errors.items:
                continue  # keep reading only to name the file's other errors
            self._apply_identities(identities)
            self._apply_credentials(credentials)
            self._keep_statistics()
        self.errors.raise_if_any()
        if self.full:
            self._gone()
        if self.run is None:
            # Nothing differs from what the sources said last time: no run, no audit, no write at all.
            return self._result(None, dry_run)
        result = self._result(self.run.pk, dry_run)
        if sum(self.counts["created"].values()) >= ANALYZE_AFTER and not dry_run:
            bulk.refresh_statistics(ServiceIdentity, Credential, SourceObject)
        self.run.counts = {name: getattr(result, name) for name in ("created", "updated", "unchanged", "gone")}
        self.run.warnings = result.warnings
        self.run.finished_at = timezone.now()
        self.run.save(update_fields=["counts", "warnings", "finished_at"])
        AuditEntry.objects.create(
            actor=self.actor, actor_label=self.actor.get_username(), action="source.imported",
            object_type="inventory.sourcerun", object_id=str(self.run.pk), object_repr=str(self.run)[:255],
            after={**self.run.counts, "kind": self.kind, "account": self.account, "full": self.full,
                   "file_digest": self.run.file_digest, "warnings": len(result.warnings),
                   **({"origin": self.origin} if self.origin else {})},
        )  # fmt: skip
        return result

    def _keep_statistics(self) -> None:
        if self.dry_run:
            return  # ANALYZE's row counts outlive a rollback; a dry run leaves even those alone
        created = sum(self.counts["created"].values())
        if created - self._analyzed_at >= max(ANALYZE_AFTER, self._analyzed_at):
            # The tables this import looks keys up in (provenance, identity names).
            bulk.refresh_statistics(ServiceIdentity, SourceObject, quick=True)
            self._analyzed_at = created

    def _check(self, object_type: str, records: list, max_length: int) -> None:
        listed = self.listed[object_type]
        for record in records:
            if len(record.external_id) > max_length:
                self.errors.add(record.where, "id", "The provider's identifier is longer than the database keeps.")
            if record.external_id in listed:
                self.errors.add(record.where, "id", f"Duplicate of the entry at {_place(listed[record.external_id])}.")
            # The line number or the path, not the dict: kept for every row of the file.
            listed[record.external_id] = record.where.get("line", record.where.get("path"))

    def _ensure_run(self) -> SourceRun:
        if self.run is None:
            self.run = SourceRun.objects.create(
                kind=self.kind, account=self.account, full=self.full, actor=self.actor,
                actor_label=self.actor.get_username(), file_digest=self.file_digest, file_bytes=self.file_bytes,
                started_at=self.now, finished_at=self.now,
            )  # fmt: skip
            source_run_committed(self.run.pk)  # issue 18: once committed, a targeted detection run on what it touched
        return self.run

    def _audit(self, changes: list[ObjectChange]) -> None:
        if not changes:
            return
        room = PREVIEW_LIMIT - len(self.preview)
        if room > 0:
            self.preview.extend(preview(change) for change in changes[:room])
        bulk.audit(actor=self.actor, changes=changes, comment=f"Source run {self.run.pk} ({self.kind})")

    def _result(self, run: int | None, dry_run: bool) -> SourceResult:
        return SourceResult(
            run=None if dry_run else run, kind=self.kind, dry_run=dry_run, created=self.counts["created"],
            updated=self.counts["updated"], unchanged=self.counts["unchanged"], gone=self.counts["gone"],
            warnings=self.warnings[:1000], preview=self.preview,
        )  # fmt: skip

    # Lookups

    def _differing(self, object_type: str, records: list, digests: dict[str, str]) -> list:
        """The records whose digest differs from what this kind and account said last time (or that it did not list):
        only those are looked up. What it said is read in one pass, the first time it is needed, and forgotten entry by
        entry as the file lists it again, so an unchanged re-import costs one query per object type, not one per
        chunk of keys."""
        said = self._said.get(object_type)
        if said is None:
            rows = SourceObject.objects.filter(provider=self.provider, object_type=object_type, kind=self.kind,
                                               account=self.account, gone_at__isnull=True).order_by()  # fmt: skip
            said = self._said[object_type] = dict(rows.values_list("external_id", "digest").iterator(chunk_size=10_000))
        listed_before = self._listed_before[object_type]
        differing = []
        for record in records:
            before = said.pop(record.external_id, None)
            if before is not None:
                listed_before.add(record.external_id)
            if before != digests[record.external_id]:
                differing.append(record)
        return differing

    def _listed_elsewhere(self, object_type: str) -> bool:
        """Whether this provider has provenance of this type that is not this kind and account's live listing (another
        kind or account's, or gone). Read once, before this import's own rows could count (they are this listing)."""
        if object_type not in self._elsewhere:
            rows = SourceObject.objects.filter(provider=self.provider, object_type=object_type)
            self._elsewhere[object_type] = rows.exclude(kind=self.kind, account=self.account,
                                                        gone_at__isnull=True).exists()  # fmt: skip
        return self._elsewhere[object_type]

    def _known(self, object_type: str, external_ids: list[str]) -> dict[str, _Known]:
        if not self._listed_elsewhere(object_type):
            # Only what this listing said before can be found: a first import of a provider's first account looks
            # nothing up (at 100,000 users that was 63 queries for 210,000 keys that could not be there).
            listed_before = self._listed_before[object_type]
            external_ids = [ext for ext in external_ids if ext in listed_before]
        columns = ("external_id", "pk", "identity_id", "credential_id", "digest", "gone_at", "kind", "account")
        base = SourceObject.objects.filter(provider=self.provider, object_type=object_type).order_by()
        found: dict[str, _Known] = {}
        for chunk in _chunks(external_ids):
            rows = bulk.keyed(base, "external_id", chunk).values_list(*columns)
            found.update((row[0], _Known(*row[1:])) for row in rows)
        return found

    def _current(self, model: type[models.Model], pks: list[int]) -> dict[int, dict]:
        found: dict[int, dict] = {}
        for chunk in _chunks(sorted(set(pks))):
            found.update((row["id"], row) for row in model.objects.filter(pk__in=chunk).order_by().values())
        return found

    def _owners(self, hints: set[str]) -> dict[str, int]:
        """Portal users the file names, by username or e-mail (case-insensitive), active only."""
        found: dict[str, int] = {}
        lowered_hints = sorted({h.lower() for h in hints})
        for chunk in _chunks(lowered_hints):
            users = User.objects.filter(is_active=True).annotate(u=Lower("username"), e=Lower("email"))
            for pk, username, email in users.filter(models.Q(u__in=chunk) | models.Q(e__in=chunk)).values_list(
                "pk", "u", "e"
            ):
                found.setdefault(username, pk)
                if email:
                    found.setdefault(email, pk)
        return found

    def _unassigned_owner(self) -> int:
        if self._unassigned is None:
            self._unassigned = unassigned_owner().pk
        return self._unassigned

    def _is_unassigned(self, owner_id: int) -> bool:
        if self._unassigned_pk is False:
            self._unassigned_pk = User.objects.filter(username=UNASSIGNED).values_list("pk", flat=True).first()
        return owner_id == self._unassigned_pk

    def _adoptable(self, external_ids: list[str]) -> dict[str, dict]:
        """Identities registered by hand (or by the JSON import) with this provider and external id, not yet sourced.

        Which external ids those are is read once per import (an anti-join on the provenance, before this import's
        own rows exist); per chunk only the matches are read, by primary key. ServiceIdentity has no index on its
        external id, so a lookup by it per chunk would scan the provider's identities once per chunk."""
        if self._unsourced is None:
            sourced = SourceObject.objects.filter(identity=models.OuterRef("pk"), object_type=IDENTITY)
            rows = (ServiceIdentity.objects.filter(provider=self.provider).exclude(external_id="")
                    .exclude(models.Exists(sourced)).order_by("pk").values_list("external_id", "pk"))  # fmt: skip
            self._unsourced = {}
            for external_id, pk in rows.iterator(chunk_size=5000):
                self._unsourced.setdefault(external_id, pk)
        wanted = {self._unsourced[ext]: ext for ext in external_ids if ext in self._unsourced}
        return {wanted[pk]: row for pk, row in self._current(ServiceIdentity, list(wanted)).items()}

    # Identities

    def _apply_identities(self, records: list[IdentityRecord]) -> None:
        if not records:
            return
        digests = {r.external_id: identity_digest(r) for r in records}
        candidates = self._differing(IDENTITY, records, digests)
        known = self._known(IDENTITY, [r.external_id for r in candidates])
        self.identity_pks.update((ext, k.identity_id) for ext, k in known.items())
        changed = _changed(candidates, known, digests)
        self.counts["unchanged"]["identities"] += len(records) - len(changed)
        if not changed:
            return
        self._ensure_run()
        owners = self._owners({r.owner_hint for r in changed if r.owner_hint})
        adopt = self._adoptable([r.external_id for r in changed if r.external_id not in known])
        current = self._current(ServiceIdentity, [known[r.external_id].identity_id for r in changed if r.external_id
                                                  in known] + [row["id"] for row in adopt.values()])  # fmt: skip
        creates: list[tuple[IdentityRecord, dict]] = []
        updates: list[tuple[dict, dict, dict]] = []
        held: list[FactChange] = []
        for record in changed:
            k = known.get(record.external_id)
            row = current.get(k.identity_id) if k else adopt.get(record.external_id)
            owner = owners.get(record.owner_hint.lower()) if record.owner_hint else None
            if row is None:
                creates.append((record, {
                    "kind": record.kind, "provider": self.provider, "external_id": record.external_id,
                    "owner_id": owner if owner is not None else self._unassigned_owner(),
                    "environment": Environment.PROD, "third_party": record.third_party,
                    "status": IdentityStatus.ACTIVE if record.active else IdentityStatus.DISABLED,
                    "last_used_at": record.last_used_at, "interactive_use_seen": record.interactive_use_seen,
                }))  # fmt: skip
                continue
            values = {"kind": record.kind, "third_party": record.third_party,
                      "interactive_use_seen": record.interactive_use_seen}  # fmt: skip
            if row["status"] != IdentityStatus.RETIRED:
                values["status"] = IdentityStatus.ACTIVE if record.active else IdentityStatus.DISABLED
            if record.last_used_at and (row["last_used_at"] is None or record.last_used_at > row["last_used_at"]):
                values["last_used_at"] = record.last_used_at
            if owner is not None and row["owner_id"] != owner and self._is_unassigned(row["owner_id"]):
                values["owner_id"] = owner
            self._hold(ServiceIdentity, SubjectType.IDENTITY, record.where, row, values, held)
            diff = [name for name, value in values.items() if row[name] != value]
            if diff:
                updates.append((row, {n: row[n] for n in diff}, {n: values[n] for n in diff}))
        self._name(creates)
        rows = [row for _, row in creates]
        pks = bulk.insert(ServiceIdentity, rows)
        self.identity_pks.update((record.external_id, pk) for (record, _), pk in zip(creates, pks, strict=True))
        self.identity_pks.update((ext, row["id"]) for ext, row in adopt.items())
        changes = self._save_updates(ServiceIdentity, updates, "identity.source_updated")
        changes += [self._created_change("identity.discovered", ServiceIdentity, pk, row, row["name"])
                    for pk, row in zip(pks, rows, strict=True)]  # fmt: skip
        del rows, creates
        FactChange.objects.bulk_create(held, batch_size=BATCH)
        self.counts["created"]["identities"] += len(pks)
        self.counts["updated"]["identities"] += len(updates)
        # A moved digest with no field the portal keeps changed (a permission list, say) is unchanged here.
        self.counts["unchanged"]["identities"] += len(changed) - len(pks) - len(updates)
        self._provenance(IDENTITY, changed, known, digests, lambda r: (self.identity_pks[r.external_id], None),
                         identity_flags)  # fmt: skip
        changes += catalog.suggest(changed, self.identity_pks, actor=self.actor)
        self._audit(changes)

    def _name(self, creates: list[tuple[IdentityRecord, dict]]) -> None:
        """Portal names are unique: `provider:label`, with a short hash of the external id where that is taken."""
        limit = ServiceIdentity._meta.get_field("name").max_length
        wanted = {record.external_id: f"{self.provider}:{record.label}"[:limit] for record, _ in creates}
        taken: set[str] = set()
        for chunk in _chunks(sorted(set(wanted.values()))):
            taken.update(bulk.keyed(ServiceIdentity.objects.all(), "name", chunk).values_list("name", flat=True))
        used: set[str] = set()
        for record, row in creates:
            name = wanted[record.external_id]
            if name in taken or name in used:
                suffix = " #" + hashlib.sha256(record.external_id.encode()).hexdigest()[:10]
                name = name[: limit - len(suffix)] + suffix
            used.add(name)
            row["name"] = name

    def _hold(self, model, subject: str, where: dict, row: dict, values: dict, held: list[FactChange]) -> None:
        changes = lowered(model, row, values)
        for name in changes:
            values.pop(name)
            self.warnings.append({**where, "field": name, "message": "This change lowers risk: it is held until "
                                  "another security user confirms it (fact_change_unreviewed)."})  # fmt: skip
        if changes:
            identity = row["id"] if model is ServiceIdentity else row.get("identity_id")
            held.append(FactChange(subject_type=subject, subject_id=row["id"], identity_id=identity,
                                   changes=changes, changed_by=self.actor))  # fmt: skip

    def _save_updates(self, model, updates: list[tuple[dict, dict, dict]], action: str, comment: str = ""):
        """Write each (row, before, after) and return the audit changes; rows are the objects' current values."""
        if not updates:
            return []
        names = sorted({name for _, _, after in updates for name in after})
        stamped = any(f.name == "updated_at" for f in model._meta.concrete_fields)
        rows = []
        for row, _, after in updates:
            merged = {"id": row["id"], **{n: after.get(n, row[n]) for n in names}}
            if stamped:
                merged["updated_at"] = self.now
            rows.append(merged)
        bulk.update(model, rows, [*names, "updated_at"] if stamped else names)
        return [
            updated_change(action, model, row["id"], label(model, {**row, **after}), before, after, comment)
            for row, before, after in updates
        ]

    def _created_change(self, action: str, model, pk: int, row: dict, label: str) -> ObjectChange:
        """The audit entry's after: every field as stored (defaults included), as a snapshot of the new object."""
        template = self._templates.get(model)
        if template is None:
            template = self._templates[model] = [
                (f.name, f.attname, json_safe(f.get_default()), isinstance(f, models.DateTimeField))
                for f in model._meta.concrete_fields
                if f.name not in ("id", "updated_at")
            ]
        after = {}
        for name, attname, default, moment in template:
            value = row.get(attname, default)
            # Most values are plain already: tested inline, as json_safe's call per field was a second per 100,000.
            if value is None or type(value) in _PLAIN:
                after[name] = value
            else:
                after[name] = value.isoformat() if moment else json_safe(value)
        after["id"] = pk
        return ObjectChange(action=action, object_type=model._meta.label_lower, object_id=pk, label=label,
                            before=None, after=after)  # fmt: skip

    # Credentials

    def _apply_credentials(self, records: list[CredentialRecord]) -> None:
        if not records:
            return
        digests = {r.external_id: credential_digest(r) for r in records}
        candidates = self._differing(CREDENTIAL, records, digests)
        known = self._known(CREDENTIAL, [r.external_id for r in candidates])
        changed = _changed(candidates, known, digests)
        self.counts["unchanged"]["credentials"] += len(records) - len(changed)
        if not changed:
            return
        self._ensure_run()
        # Identities this file lists unchanged were never looked up; their credentials changed, so they are now.
        missing = sorted({r.identity_external_id for r in changed} - self.identity_pks.keys())
        self.identity_pks.update((ext, k.identity_id) for ext, k in self._known(IDENTITY, missing).items())
        current = self._current(Credential, [known[r.external_id].credential_id for r in changed if r.external_id in
                                             known])  # fmt: skip
        creates: list[tuple[CredentialRecord, dict]] = []
        updates: list[tuple[dict, dict, dict]] = []
        revoked_now: set[str] = set()
        for record in changed:
            k = known.get(record.external_id)
            row = current.get(k.credential_id) if k else None
            identity_id = self.identity_pks[record.identity_external_id]
            fingerprint = record.digest.fingerprint if record.digest else source_fingerprint(
                self.provider, record.external_id)  # fmt: skip
            if row is None:
                creates.append((record, {
                    "identity_id": identity_id, "kind": record.kind, "fingerprint": fingerprint,
                    "last4": record.digest.last4 if record.digest else "", "created_at": record.created_at or self.now,
                    "expires_at": record.expires_at, "last_used_at": record.last_used_at,
                    "revoked_at": self.now if record.revoked else None,
                }))  # fmt: skip
                continue
            values = {"kind": record.kind, "expires_at": record.expires_at, "fingerprint": fingerprint,
                      "last4": record.digest.last4 if record.digest else row["last4"]}  # fmt: skip
            if record.last_used_at and (row["last_used_at"] is None or record.last_used_at > row["last_used_at"]):
                values["last_used_at"] = record.last_used_at
            if record.revoked and row["revoked_at"] is None:
                values["revoked_at"] = self.now
                revoked_now.add(record.external_id)
            elif not record.revoked and row["revoked_at"] is not None:
                self.warnings.append({**record.where, "field": "status", "message": "The source lists this credential "
                                      "as live again; it was revoked and the portal never un-revokes. Revoke it at the "
                                      "source, or register its replacement."})  # fmt: skip
            diff = [name for name, value in values.items() if row[name] != value]
            if diff:
                updates.append((row, {n: row[n] for n in diff}, {n: values[n] for n in diff}))
        rows = [row for _, row in creates]
        pks = bulk.insert(Credential, rows)
        changes = self._save_updates(Credential, updates, "credential.source_updated")
        changes += [self._created_change("credential.discovered", Credential, pk, row, f"{row['kind']} credential {pk}")
                    for pk, row in zip(pks, rows, strict=True)]  # fmt: skip
        self.counts["created"]["credentials"] += len(pks)
        self.counts["updated"]["credentials"] += len(updates)
        self.counts["unchanged"]["credentials"] += len(changed) - len(pks) - len(updates)
        credential_pks = {record.external_id: pk for (record, _), pk in zip(creates, pks, strict=True)}
        credential_pks.update((ext, k.credential_id) for ext, k in known.items())
        del rows, creates
        self._provenance(
            CREDENTIAL, changed, known, digests,
            lambda r: (self.identity_pks[r.identity_external_id], credential_pks[r.external_id]), credential_flags,
            reasons={ext: r.revoked_reason for r in changed if (ext := r.external_id) in revoked_now or r.revoked},
        )  # fmt: skip
        self._audit(changes)

    # Provenance

    def _provenance(self, object_type, records, known, digests, targets, flags, reasons=None) -> None:
        creates, updates = [], []
        for record in records:
            identity_id, credential_id = targets(record)
            values = {
                "kind": self.kind, "account": self.account, "digest": digests[record.external_id],
                "last_seen_at": self.now, "last_run_id": self.run.pk, "gone_at": None,
                "gone_reason": (reasons or {}).get(record.external_id, "")[:255],
                "identity_id": identity_id, "credential_id": credential_id,
                "attributes": json_safe(record.attributes), **flags(record),
            }  # fmt: skip
            k = known.get(record.external_id)
            if k is None:
                creates.append({"provider": self.provider, "object_type": object_type,
                                "external_id": record.external_id, "first_seen_at": self.now,
                                "first_run_id": self.run.pk, **values})  # fmt: skip
            else:
                updates.append({"id": k.pk, **values})
        bulk.insert(SourceObject, creates, keys=False)
        if updates:
            bulk.update(SourceObject, updates, [n for n in updates[0] if n != "id"])

    # Gone at the source

    def _gone(self) -> None:
        """What this kind and account listed before, still there then, and not in this file."""
        listed = self.listed
        gone: dict[str, list[tuple[int, int, int | None]]] = {IDENTITY: [], CREDENTIAL: []}
        rows = SourceObject.objects.filter(provider=self.provider, kind=self.kind, account=self.account,
                                           gone_at__isnull=True).order_by()  # fmt: skip
        for object_type, external_id, pk, identity_id, credential_id in rows.values_list(
            "object_type", "external_id", "pk", "identity_id", "credential_id"
        ).iterator(chunk_size=5000):
            if external_id not in listed[object_type]:
                gone[object_type].append((pk, identity_id, credential_id))
        if not (gone[IDENTITY] or gone[CREDENTIAL]):
            return
        run = self._ensure_run()
        reason = f"No longer listed by {self.kind}" + (f" ({self.account})" if self.account else "")
        reason += f" in source run {run.pk}."
        changes: list[ObjectChange] = []
        for chunk in _chunks(gone[CREDENTIAL]):
            revokes = [
                (row, {"revoked_at": None}, {"revoked_at": self.now})
                for row in self._current(Credential, [c for _, _, c in chunk]).values() if row["revoked_at"] is None
            ]  # fmt: skip
            changes += self._save_updates(Credential, revokes, "credential.revoked_at_source", reason)
        for chunk in _chunks(gone[IDENTITY]):
            disables = [
                (row, {"status": row["status"]}, {"status": IdentityStatus.DISABLED})
                for row in self._current(ServiceIdentity, [i for _, i, _ in chunk]).values()
                if row["status"] == IdentityStatus.ACTIVE
            ]  # fmt: skip
            changes += self._save_updates(ServiceIdentity, disables, "identity.gone_at_source", reason)
        for chunk in _chunks([pk for pk, _, _ in gone[CREDENTIAL] + gone[IDENTITY]]):
            SourceObject.objects.filter(pk__in=chunk).update(gone_at=self.now, gone_reason=reason[:255],
                                                             last_run_id=run.pk)  # fmt: skip
        self.counts["gone"] = {"identities": len(gone[IDENTITY]), "credentials": len(gone[CREDENTIAL])}
        self._audit(changes)


def _changed(records: list, known: dict[str, _Known], digests: dict[str, str]) -> list:
    """New rows, rows whose digest moved, and rows back after being gone."""
    out = []
    for record in records:
        k = known.get(record.external_id)
        if k is None or k.gone_at is not None or k.digest != digests[record.external_id]:
            out.append(record)
    return out
