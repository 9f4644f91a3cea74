"""What the detectors tell posture: which controls each is primary or supporting evidence for, and, per tool, whether
it has something to examine and when that last changed.

A detector's silence is evidence for a tool only when the tool has subjects of the kind the detector examines
(`registry.Detector.examined`): NHI2 does not pass for a tool without credentials because no secret of it was found.
The subjects of each kind, reached from a tool through its bindings, and the moment they last changed:

- `tool`: the tool itself (its `updated_at`);
- `identity`: its active identities (the identity's `updated_at`, or when it was bound to the tool);
- `credential`: the live (unrevoked, unexpired) credentials of its identities (created, rotated, changed, or bound);
- `grant`: the active, unexpired grants of its identities (granted, changed, or bound).

`Examines.where` narrows a kind with ORM lookups on its model, compiled into the same statement.
The Python form of these rules is `evaluate_reference` (subjects_changed).
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection

from inventory.choices import GrantStatus, IdentityStatus
from inventory.detection import registry
from inventory.detection.registry import Examines
from inventory.models import AITool, Credential, ScopeGrant, ServiceIdentity, ToolIdentity
from nhi_portal.sql import Names, literal

KIND_MODELS = {"tool": AITool, "identity": ServiceIdentity, "credential": Credential, "grant": ScopeGrant}
KIND_NOUNS = {"tool": "tool facts", "identity": "identities", "credential": "credentials", "grant": "grants"}


@dataclass(frozen=True)
class Evidence:
    """The registry as posture reads it. `primary` and `supporting`: control ref ("FRAMEWORK:ID") -> detector keys;
    `examined`: detector key -> what it examines."""

    primary: dict[str, list[str]]
    supporting: dict[str, list[str]]
    examined: dict[str, tuple[Examines, ...]]

    def nouns(self, ref: str) -> str:
        """What the control's primary detectors examine, in words: "credentials", "identities or grants". A kind
        examined in full makes its narrowed forms ("matching credentials") go without saying."""
        items = {item for d in self.primary.get(ref, []) for item in self.examined.get(d, ())}
        whole = {item.kind for item in items if not item.where}
        kinds = []
        for item in sorted(items, key=lambda i: (i.kind, i.where != (), repr(i.where))):
            if item.where and item.kind in whole:
                continue
            noun = item.described or KIND_NOUNS[item.kind]
            if item.where and not item.described:
                flags = [k.replace("_", "-") for k, v in item.where if v is True and "__" not in k]
                noun = f"{' '.join(flags) or 'matching'} {noun}"
            if noun not in kinds:
                kinds.append(noun)
        return " or ".join(kinds) or "subjects"

    def crosswalk_key(self, ref: str) -> frozenset[str]:
        return frozenset(self.primary.get(ref, ()))


def evidence_map() -> Evidence:
    primary: dict[str, list[str]] = defaultdict(list)
    supporting: dict[str, list[str]] = defaultdict(list)
    examined = {}
    for detector in registry.all_detectors():
        for ref in detector.controls:
            primary[ref].append(detector.key)
        for ref in detector.supporting:
            supporting[ref].append(detector.key)
        if detector.controls:
            examined[detector.key] = detector.examined
    return Evidence(dict(primary), dict(supporting), examined)


def greatest(*expressions: str) -> str:
    """The latest of non-NULL timestamps: GREATEST on PostgreSQL, the scalar MAX on SQLite."""
    function = "MAX" if connection.vendor == "sqlite" else "GREATEST"
    return f"{function}({', '.join(expressions)})"


def _narrowed(item: Examines, alias: str) -> tuple[str, list]:
    """`AND alias.id IN (the kind's model filtered by the Examines lookups)`, or nothing when not narrowed."""
    if not item.where:
        return "", []
    model = KIND_MODELS[item.kind]
    sql, params = model.objects.filter(**item.lookups).order_by().values("pk").query.sql_with_params()
    return f" AND {alias}.{Names(model).pk} IN ({sql})", list(params)


def subjects_sql(item: Examines, *, now_param, tool_id: int | None = None) -> tuple[str, list]:
    """SELECT (tool_id, changed) for the tools that have subjects `item` describes: one row per tool, with the latest
    change among its subjects; only for `tool_id` when given."""
    binding, tool = Names(ToolIdentity), Names(AITool)
    one = [] if tool_id is None else [tool_id]
    if item.kind == "tool":
        narrowed, params = _narrowed(item, "t")
        where = f" AND t.{tool.pk} = %s" if one else ""
        return f"SELECT t.{tool.pk}, t.{tool.updated_at} FROM {tool} t WHERE TRUE{narrowed}{where}", [*params, *one]
    bound = f"b.{binding.created_at}"
    if item.kind == "identity":
        identity = Names(ServiceIdentity)
        join = f"JOIN {identity} s ON s.{identity.pk} = b.{binding.identity}"
        live = f"s.{identity.status} = {literal(IdentityStatus.ACTIVE)}"
        changed, live_params = greatest(bound, f"s.{identity.updated_at}"), []
    elif item.kind == "credential":
        credential = Names(Credential)
        join = f"JOIN {credential} s ON s.{credential.identity} = b.{binding.identity}"
        expires = f"s.{credential.expires_at}"
        live = f"s.{credential.revoked_at} IS NULL AND ({expires} IS NULL OR {expires} > %s)"
        rotated = f"COALESCE(s.{credential.last_rotated_at}, s.{credential.created_at})"
        changed = greatest(bound, f"s.{credential.created_at}", rotated, f"s.{credential.updated_at}")
        live_params = [now_param]
    else:
        grant = Names(ScopeGrant)
        join = f"JOIN {grant} s ON s.{grant.identity} = b.{binding.identity}"
        live = (
            f"s.{grant.status} = {literal(GrantStatus.ACTIVE)} AND (s.{grant.expires_at} IS NULL "
            f"OR s.{grant.expires_at} > %s)"
        )
        changed, live_params = greatest(bound, f"s.{grant.granted_at}", f"s.{grant.updated_at}"), [now_param]
    narrowed, params = _narrowed(item, "s")
    where = f" AND b.{binding.tool} = %s" if one else ""
    sql = (
        f"SELECT b.{binding.tool}, MAX({changed}) FROM {binding} b {join} WHERE {live}{narrowed}{where} "
        f"GROUP BY b.{binding.tool}"
    )
    return sql, [*live_params, *params, *one]
