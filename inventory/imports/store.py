"""The database side of an import: what already exists for the document's natural keys, then the writes.

Set-based: one query per kind (per LOOKUP_CHUNK keys) to look up, one statement per batch to write, so the query
count follows the batches, never the rows. The governance rules the writes keep (never un-revoke, never stretch an
approval) are described in `inventory.imports.document`.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Exists, OuterRef

from inventory import facts
from inventory.audit.record import ObjectChange
from inventory.choices import GrantStatus
from inventory.facts import lowered, scope_risk_lowered
from inventory.imports import audit as import_audit
from inventory.imports.rows import SPECS, Messages, Row
from inventory.models import AITool, Credential, FactChange, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity

User = get_user_model()

BATCH_SIZE = 1000
# `__in` lists are split so that no single query carries more parameters than SQLite allows.
LOOKUP_CHUNK = 2000


def fetch(queryset: models.QuerySet, lookup: str, values: Iterable) -> list:
    values = sorted(set(values), key=str)
    found: list = []
    for start in range(0, len(values), LOOKUP_CHUNK):
        found.extend(queryset.filter(**{f"{lookup}__in": values[start : start + LOOKUP_CHUNK]}))
    return found


@dataclass
class Upsert:
    """Rows of one kind sorted into creates, updates and unchanged, by natural key.

    Existing rows come in as dicts from `.values()`: model instances are built only for rows that are
    written, which keeps re-importing a large, unchanged file cheap. What changed is kept for the audit.
    """

    model: type[models.Model]
    pks: dict[tuple, int] = field(default_factory=dict)
    created: list[tuple[tuple, models.Model, str | None]] = field(default_factory=list)
    updated: list[tuple[models.Model, dict[str, Any], dict[str, Any], str | None]] = field(default_factory=list)
    changed_fields: set[str] = field(default_factory=set)
    unchanged: int = 0

    def put(self, key: tuple, existing: dict[str, Any] | None, values: dict[str, Any], label: str | None = None):
        """`label` names the object in the audit where its `str()` would load related rows."""
        if existing is None:
            self.created.append((key, self.model(**values), label))
            return
        self.pks[key] = existing["id"]
        changed = [name for name, value in values.items() if existing[name] != value]
        if changed:
            self.changed_fields.update(changed)
            before, after = {n: existing[n] for n in changed}, {n: values[n] for n in changed}
            self.updated.append((self.model(**(existing | values)), before, after, label))
        else:
            self.unchanged += 1

    def save(self, now: datetime) -> dict[str, int]:
        self.model.objects.bulk_create([obj for _, obj, _ in self.created], batch_size=BATCH_SIZE)
        # Both supported databases return the new ids from a bulk insert.
        self.pks.update((key, obj.pk) for key, obj, _ in self.created)
        if self.updated:
            objs = [obj for obj, *_ in self.updated]
            fields = sorted(self.changed_fields)
            # bulk_update skips auto_now, so the change time is set here.
            if any(f.name == "updated_at" for f in self.model._meta.concrete_fields):
                for obj in objs:
                    obj.updated_at = now
                fields.append("updated_at")
            self.model.objects.bulk_update(objs, fields, batch_size=BATCH_SIZE)
        return {"created": len(self.created), "updated": len(self.updated), "unchanged": self.unchanged}

    def changes(self) -> Iterator[ObjectChange]:
        """After `save`: one audit change per created or changed object."""
        for _, obj, label in self.created:
            yield import_audit.created(obj, label)
        for obj, before, after, label in self.updated:
            yield import_audit.updated(obj, before, after, label)


@dataclass
class Writing:
    """What every writer shares: the import's clock, its warnings and the audit changes so far."""

    now: datetime
    warnings: Messages
    actor: Any = None
    changes: list[ObjectChange] = field(default_factory=list)
    held: list[FactChange] = field(default_factory=list)

    def hold_lowered(self, section: str, i: int, model, current: dict[str, Any] | None, values: dict[str, Any]):
        """An import is one person's word too: a change that lowers a fact the rules rely on (inventory.facts) is
        held for another security user to confirm, not applied; the rest of the row applies."""
        if current is None:
            return
        changes = lowered(model, current, values)
        for name in changes:
            values.pop(name)
            self.warnings.add(section, i, name, HELD)
        if changes:
            subject = {AITool: "tool", ServiceIdentity: "identity", Credential: "credential"}[model]
            self.held.append(
                FactChange(
                    subject_type=subject, subject_id=current["id"], changes=changes, changed_by=self.actor,
                    tool_id=current["id"] if model is AITool else None,
                    identity_id={ServiceIdentity: current["id"], Credential: current.get("identity_id")}.get(model),
                )
            )  # fmt: skip

    def saved(self, upsert: Upsert) -> dict[str, int]:
        counts = upsert.save(self.now)
        self.changes.extend(upsert.changes())
        return counts


def _values(row: Row, names: Iterable[str]) -> dict[str, Any]:
    return {name: row[name] for name in names if name in row}


@dataclass
class Known:
    """What the database already holds for every natural key the document mentions, one query per kind."""

    users: dict[str, Any]
    teams: dict[str, Team]
    taken_team_names: set[str]
    # Field values by natural key, as `.values()` gives them.
    scopes: dict[str, dict[str, Any]]
    tools: dict[str, dict[str, Any]]
    identities: dict[str, dict[str, Any]]


def look_up(rows: dict[str, list[tuple[int, Row]]]) -> Known:
    tools, identities, grants = rows["tools"], rows["identities"], rows["grants"]
    owner_names = {row["owner"] for _, row in tools + identities if "owner" in row}
    team_slugs = {row["team"] for _, row in tools if row.get("team")}
    teams = {t.slug: t for t in fetch(Team.objects.all(), "slug", team_slugs)}
    scope_names = {row["name"] for _, row in rows["scopes"] if "name" in row}
    scope_names |= {row["scope"] for _, row in grants if "scope" in row}
    tool_slugs = {row["slug"] for _, row in tools if "slug" in row}
    tool_slugs |= {s for _, row in identities for s in row.get("tools", []) if isinstance(s, str)}
    tool_slugs |= {row["tool"] for _, row in grants if row.get("tool")}
    identity_names = {row["name"] for _, row in identities if "name" in row}
    identity_names |= {n for _, row in tools for n in row.get("identities", []) if isinstance(n, str)}
    identity_names |= {row["identity"] for _, row in rows["credentials"] + grants if "identity" in row}
    return Known(
        users={u.username: u for u in fetch(User.objects.only("pk", "username", "is_active"), "username", owner_names)},
        teams=teams,
        # A new team is named after its slug, which must not collide with another team's name.
        taken_team_names={t.name for t in fetch(Team.objects.all(), "name", team_slugs - teams.keys())},
        scopes={s["name"]: s for s in fetch(Scope.objects.values(), "name", scope_names)},
        tools={t["slug"]: t for t in fetch(AITool.objects.values(), "slug", tool_slugs)},
        identities={i["name"]: i for i in fetch(ServiceIdentity.objects.values(), "name", identity_names)},
    )


def write(rows: dict[str, list[tuple[int, Row]]], known: Known, writing: Writing) -> dict[str, dict[str, int]]:
    """Write in dependency order, each kind in batches; created objects get their ids from the insert."""
    counts: dict[str, dict[str, int]] = {}
    team_slugs = {row["team"] for _, row in rows["tools"] if row.get("team")}
    new_teams = [Team(slug=slug, name=slug) for slug in sorted(team_slugs - known.teams.keys())]
    Team.objects.bulk_create(new_teams, batch_size=BATCH_SIZE)
    writing.changes.extend(import_audit.created(team) for team in new_teams)
    teams = known.teams | {t.slug: t for t in new_teams}
    counts["teams"] = {"created": len(new_teams), "updated": 0, "unchanged": len(team_slugs) - len(new_teams)}

    upsert = Upsert(Scope)
    for i, row in rows["scopes"]:
        values = _values(row, SPECS["scopes"])
        _keep_scope_risk(i, known.scopes.get(row["name"]), values, writing)
        upsert.put((row["name"],), known.scopes.get(row["name"]), values)
    counts["scopes"] = writing.saved(upsert)
    scopes = {name: s["id"] for name, s in known.scopes.items()} | {key[0]: pk for key, pk in upsert.pks.items()}

    upsert = Upsert(AITool)
    for i, row in rows["tools"]:
        values = _values(row, [name for name in SPECS["tools"] if name not in ("owner", "team", "identities")])
        values["owner_id"] = known.users[row["owner"]].pk
        if "team" in row:
            values["team_id"] = teams[row["team"]].pk if row["team"] else None
        writing.hold_lowered("tools", i, AITool, known.tools.get(row["slug"]), values)
        upsert.put((row["slug"],), known.tools.get(row["slug"]), values)
    counts["tools"] = writing.saved(upsert)
    tools = {slug: t["id"] for slug, t in known.tools.items()} | {key[0]: pk for key, pk in upsert.pks.items()}

    upsert = Upsert(ServiceIdentity)
    stored = [(known.identities.get(row["name"]), row) for _, row in rows["identities"]]
    moved = {now["id"] for now, row in stored if now and row.get("provider", now["provider"]) != now["provider"]}
    bound = facts.provider_bound(moved) if moved else set()
    for i, row in rows["identities"]:
        values = _values(row, [name for name in SPECS["identities"] if name not in ("owner", "tools")])
        values["owner_id"] = known.users[row["owner"]].pk
        current = known.identities.get(row["name"])
        if current and current["id"] in bound and values.get("provider", current["provider"]) != current["provider"]:
            values["provider"] = current["provider"]
            writing.warnings.add("identities", i, "provider", facts.PROVIDER_BOUND)
        writing.hold_lowered("identities", i, ServiceIdentity, known.identities.get(row["name"]), values)
        upsert.put((row["name"],), known.identities.get(row["name"]), values)
    counts["identities"] = writing.saved(upsert)
    identities = {name: i["id"] for name, i in known.identities.items()}
    identities |= {key[0]: pk for key, pk in upsert.pks.items()}

    counts["bindings"] = _write_bindings(rows["tools"], rows["identities"], tools, identities, writing)
    counts["credentials"] = _write_credentials(rows["credentials"], identities, writing)
    counts["grants"] = _write_grants(rows["grants"], identities, scopes, tools, writing)
    FactChange.objects.bulk_create(writing.held, batch_size=BATCH_SIZE)
    return counts


HELD = "This change lowers risk: it is held until another security user confirms it (fact_change_unreviewed)."
SCOPE_RISK = "A scope's risk is never lowered by import: approvals already given rest on it. Create a new scope."


def _keep_scope_risk(i: int, current: dict[str, Any] | None, values: dict[str, Any], writing: Writing) -> None:
    """Lowering a scope's risk or sensitivity would lower the approvals every grant of it needs, at once."""
    if current is None:
        return
    for name in ("risk", "sensitive"):
        if name in values and scope_risk_lowered(name, current[name], values[name]):
            values.pop(name)
            writing.warnings.add("scopes", i, name, SCOPE_RISK)


def _write_bindings(tools, identities, tool_pks: dict[str, int], identity_pks: dict[str, int], writing: Writing):
    pairs = {(tool_pks[row["slug"]], identity_pks[name]) for _, row in tools for name in row.get("identities", [])}
    pairs |= {(tool_pks[slug], identity_pks[row["name"]]) for _, row in identities for slug in row.get("tools", [])}
    existing = set(fetch(ToolIdentity.objects.values_list("tool_id", "identity_id"), "tool", {t for t, _ in pairs}))
    new = [ToolIdentity(tool_id=t, identity_id=i) for t, i in sorted(pairs - existing)]
    ToolIdentity.objects.bulk_create(new, batch_size=BATCH_SIZE)
    if new:
        slugs, names = {pk: k for k, pk in tool_pks.items()}, {pk: k for k, pk in identity_pks.items()}
        writing.changes.extend(import_audit.created(b, f"{slugs[b.tool_id]} -> {names[b.identity_id]}") for b in new)
    return {"created": len(new), "updated": 0, "unchanged": len(pairs) - len(new)}


def _write_credentials(rows, identity_pks: dict[str, int], writing: Writing) -> dict[str, int]:
    queryset = Credential.objects.values()
    existing = {
        (c["identity_id"], c["fingerprint"]): c for c in fetch(queryset, "identity", _pks_of(rows, identity_pks))
    }
    upsert = Upsert(Credential)
    for i, row in rows:
        values = _values(row, [name for name in SPECS["credentials"] if name not in ("identity", "secret")])
        values["identity_id"] = identity_pks[row["identity"]]
        key = (values["identity_id"], row["fingerprint"])
        current = existing.get(key)
        if current is None:
            values.setdefault("created_at", writing.now)
        elif (revoked := current["revoked_at"]) is not None and values.get("revoked_at", revoked) != revoked:
            un_revoke = values.pop("revoked_at") is None
            writing.warnings.add("credentials", i, "revoked_at", _revoked("credential", un_revoke=un_revoke))
        writing.hold_lowered("credentials", i, Credential, current, values)
        upsert.put(key, current, values)
    return writing.saved(upsert)


REVOCATION = ("status", "revoked_at", "revoke_reason")
APPROVED_ONLY = "This grant was issued by an approved request; import may only record its last use or revoke it."
OBSERVED = "The row was recorded as a new grant observed at the source; it authorizes nothing until approved."


def _revoked(kind: str, *, un_revoke: bool) -> str:
    if un_revoke:
        return f"This {kind} was revoked; import does not un-revoke it."
    return f"This {kind} was revoked; import does not change its revocation."


def _write_grants(rows, identity_pks, scope_pks, tool_pks, writing: Writing) -> dict[str, int]:
    # Whether an approved request issued the grant, read in the same query; approvals is looked up by name
    # because inventory never imports it.
    issued = apps.get_model("approvals", "GrantIssue").objects.filter(grant=OuterRef("pk"))
    queryset = ScopeGrant.objects.annotate(issued=Exists(issued)).values()
    found = fetch(queryset, "identity", _pks_of(rows, identity_pks))
    approved = set()
    for grant in found:
        # The approval counts the workflow stamps on a grant, where the model has them, mark it approved too.
        if grant.pop("issued") or grant.get("approvals") or grant.get("approved_by_policy"):
            approved.add(grant["id"])
    # Revoked and expired grants may repeat a key: the active one wins, then the newest. Sorted so it comes last.
    found.sort(key=lambda grant: (grant["status"] == GrantStatus.ACTIVE, grant["id"]))
    existing = {(g["identity_id"], g["scope_id"], g["resource_constraint"]): g for g in found}
    upsert = Upsert(ScopeGrant)
    for i, row in rows:
        values = _values(row, ("resource_constraint", "status", "granted_at", "expires_at", "last_used_at"))
        values |= _values(row, ("revoked_at", "revoke_reason"))
        values["identity_id"], values["scope_id"] = identity_pks[row["identity"]], scope_pks[row["scope"]]
        if "tool" in row:
            values["tool_id"] = tool_pks[row["tool"]] if row["tool"] else None
        if values.get("status") == GrantStatus.REVOKED and values.get("revoked_at", False) is None:
            # "Revoked, time unknown": keeps the stored time, or takes the import's when this import revokes it.
            del values["revoked_at"]
        key = (values["identity_id"], values["scope_id"], row["resource_constraint"])
        current = existing.get(key)
        if current is not None and _keeps_governed(i, current, current["id"] in approved, values, writing):
            current = None
        if current is None:
            values.setdefault("granted_at", writing.now)
        upsert.put(key, current, values, label=f"{row['scope']} for {row['identity']}")
    return writing.saved(upsert)


def _keeps_governed(i: int, current: dict[str, Any], approved: bool, values: dict[str, Any], writing: Writing) -> bool:
    """Drop from `values` the changes an import may not make to this existing grant, each with a warning.

    True when the row is to be a new grant instead: it says `active` where the stored grant was revoked.
    """

    def differs(name: str) -> bool:
        return name in values and values[name] != current[name]

    def drop(name: str, message: str) -> None:
        del values[name]
        writing.warnings.add("grants", i, name.removesuffix("_id"), message)

    if current["status"] == GrantStatus.REVOKED:
        if values.get("status") == GrantStatus.ACTIVE:
            message = _revoked("grant", un_revoke=True) + " " + OBSERVED
            writing.warnings.add("grants", i, "status", message)
            return True
        for name in REVOCATION:
            if differs(name):
                un_revoke = name == "status" or (name == "revoked_at" and values[name] is None)
                drop(name, _revoked("grant", un_revoke=un_revoke))
    revoking = current["status"] == GrantStatus.ACTIVE and values.get("status") == GrantStatus.REVOKED
    if revoking:
        values.setdefault("revoked_at", writing.now)
    if approved:
        allowed = {"last_used_at", *(REVOCATION if revoking else ())}
        for name in [name for name in values if name not in allowed and differs(name)]:
            drop(name, APPROVED_ONLY)
    return False


def _pks_of(rows, identity_pks: dict[str, int]) -> set[int]:
    return {identity_pks[row["identity"]] for _, row in rows}
