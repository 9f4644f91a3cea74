"""Writes to the inventory. Each function is one transaction with its audit entry.

Callers (forms, serializers, the importer, commands) validate shape; these functions enforce who
may do what, re-checking inside the transaction.
"""

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from inventory import facts
from inventory.audit.record import audit_record, changed, snapshot
from inventory.changes import changes_record
from inventory.compromise import compromise_lift
from inventory.facts import hold_fact_changes
from inventory.fingerprints import FINGERPRINT_RE, digest_secret, validate_secret
from inventory.redaction import redact_secrets
from nhi_portal import roles
from nhi_portal.exceptions import PortalError

from .choices import GrantStatus, ToolStatus
from .models import AITool, Credential, ScopeGrant, ServiceIdentity, ToolIdentity, ToolSecretMatch

TOOL_FIELDS = (
    "name",
    "slug",
    "kind",
    "vendor",
    "owner",
    "team",
    "environment",
    "data_classification",
    "status",
    "description",
    "enforces_authorization",
    "prompt_templates",
    "connector_config",
)
SCANNED_TOOL_TEXT = ("prompt_templates", "connector_config")
IDENTITY_FIELDS = (
    "name",
    "kind",
    "provider",
    "external_id",
    "owner",
    "environment",
    "third_party",
    "status",
    "last_used_at",
    "interactive_use_seen",
    "last_reviewed_at",
)
CREDENTIAL_FIELDS = ("kind", "storage", "created_at", "last_rotated_at", "expires_at", "last_used_at", "revoked_at")


def _require_writer(actor) -> None:
    if not roles.may_write(actor):
        raise PermissionDenied("Your role cannot change the inventory.")


def _owner_for(actor, requested_owner):
    """Owners register things for themselves; only security may assign another owner."""
    if requested_owner is None or requested_owner == actor:
        return actor
    if not roles.is_security(actor):
        raise PortalError("Only security can assign an object to another owner.", field="owner")
    return requested_owner


def _check_bindable(actor, identities: Iterable[ServiceIdentity]) -> list[ServiceIdentity]:
    identities = list(identities)
    if not identities or roles.is_security(actor):
        return identities
    wanted = {i.pk for i in identities}
    if ServiceIdentity.objects.editable_by(actor).filter(pk__in=wanted).count() != len(wanted):
        raise PortalError("You can only bind identities you own.", field="identities")
    return identities


def _set_identities(tool: AITool, identities: list[ServiceIdentity]) -> None:
    wanted = {i.pk for i in identities}
    current = set(tool.bindings.values_list("identity_id", flat=True))
    tool.bindings.filter(identity_id__in=current - wanted).delete()
    ToolIdentity.objects.bulk_create([ToolIdentity(tool=tool, identity_id=pk) for pk in wanted - current])


def _redact_tool_text(data: dict[str, Any]) -> dict[str, list]:
    """Replace secrets in the tool's prompt and connector text before it is stored; return what was found."""
    found = {}
    for name in SCANNED_TOOL_TEXT:
        if data.get(name):
            data[name], found[name] = redact_secrets(data[name])
    return found


def tool_store_scanned_text(*, tool: AITool, texts: dict[str, str]) -> None:
    """Store prompt / connector text on a tool with its secrets redacted, and record what was found. For loaders
    (demo data) that write tools directly; the create and update services do the same inline."""
    texts = {name: texts[name] for name in SCANNED_TOOL_TEXT if name in texts}
    found = {name: [] for name in texts} | _redact_tool_text(texts)
    for name, text in texts.items():
        setattr(tool, name, text)
    tool.save(update_fields=list(texts))
    _record_secret_matches(tool, found)


def _record_secret_matches(tool: AITool, found: dict[str, list]) -> None:
    tool.secret_matches.filter(field__in=found).delete()
    ToolSecretMatch.objects.bulk_create(
        [
            ToolSecretMatch(
                tool=tool, field=name, line_number=m.line_number, secret_type=m.secret_type, redacted=m.redacted
            )
            for name, matches in found.items()
            for m in matches
        ]
    )


# Who the tool may act for: part of the tool, set with it, audited with it.
TOOL_AUDIENCE = ("allowed_users", "allowed_teams")


def _set_audience(tool: AITool, data: dict[str, Any]) -> dict[str, tuple[list, list]]:
    changes = {}
    for name in TOOL_AUDIENCE:
        if data.get(name) is None:
            continue
        manager = getattr(tool, name)
        before = sorted(manager.values_list("pk", flat=True))
        manager.set(data[name])
        after = sorted(o.pk for o in data[name])
        if before != after:
            changes[name] = (before, after)
    return changes


# Fields that record security's observations or containment; owners must not be able to wave findings away.
SECURITY_ONLY = {
    "tool": ("enforces_authorization",),
    "identity": ("interactive_use_seen", "last_reviewed_at", "last_used_at"),
    "credential": ("created_at", "last_rotated_at", "last_used_at"),
}
# Times the system records: the age detectors read them, so none may lie ahead (a key "created" in 2099 never ages).
SYSTEM_TIMES = {
    "identity": ("last_used_at", "last_reviewed_at"),
    "credential": ("created_at", "last_rotated_at", "last_used_at"),
}
CLOCK_SKEW = timedelta(minutes=5)


def _guard(actor, kind: str, instance, data: dict[str, Any]) -> None:
    """Refuse a non-security change to a security-only field, re-activation of a disabled identity or a retired
    tool, or un-revoking; and for everyone, a time the system records that lies in the future."""
    for name in SYSTEM_TIMES.get(kind, ()):
        if data.get(name) and data[name] > timezone.now() + CLOCK_SKEW:
            raise PortalError(f"{name.replace('_', ' ').capitalize()} cannot be in the future.", field=name)
    if kind == "credential" and instance.pk and instance.revoked_at and "revoked_at" in data and not data["revoked_at"]:
        raise PortalError("A revoked credential stays revoked; record a new one instead.", field="revoked_at")
    moves = kind == "identity" and instance.pk and data.get("provider", instance.provider) != instance.provider
    if moves and facts.provider_bound({instance.pk}):
        raise PortalError(facts.PROVIDER_BOUND, field="provider")
    if roles.is_security(actor):
        return
    if (
        kind == "tool"
        and instance.pk
        and instance.status == ToolStatus.RETIRED
        and data.get("status")
        not in (
            None,
            ToolStatus.RETIRED,
        )
    ):
        raise PortalError("Only security can bring a retired tool back.", field="status")
    for name in SECURITY_ONLY[kind]:
        if name in data and (instance.pk is None or getattr(instance, name) != data[name]):
            default = instance._meta.get_field(name).get_default()
            if instance.pk is None and data[name] in (default, None):
                continue
            raise PortalError(f"Only security can set {name.replace('_', ' ')}.", field=name)
    if kind == "identity" and instance.pk and instance.status != "active" and data.get("status") == "active":
        raise PortalError("Only security can re-activate a disabled or retired identity.", field="status")


def _apply(instance, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for field, value in data.items():
        if field in allowed:
            setattr(instance, field, value)


@transaction.atomic
def tool_create(*, actor, data: dict[str, Any]) -> AITool:
    _require_writer(actor)
    data = dict(data)
    identities = _check_bindable(actor, data.pop("identities", []) or [])
    found = _redact_tool_text(data)
    tool = AITool()
    _guard(actor, "tool", tool, data)
    _apply(tool, data, TOOL_FIELDS)
    tool.owner = _owner_for(actor, data.get("owner"))
    tool.full_clean()
    tool.save()
    _set_identities(tool, identities)
    _record_secret_matches(tool, found)
    audience = _set_audience(tool, data)
    after = snapshot(tool) | {name: new for name, (_, new) in audience.items()}
    audit_record(actor=actor, action="tool.created", obj=tool, after=after)
    changes_record(topics=["tool"], tools=[tool.pk], identities=[i.pk for i in identities])  # issue 18: detect now
    return tool


@transaction.atomic
def tool_update(*, actor, tool: AITool, data: dict[str, Any]) -> AITool:
    tool = AITool.objects.editable_by(actor).select_for_update().filter(pk=tool.pk).first()
    if tool is None:
        raise PermissionDenied("You cannot edit this tool.")
    data = dict(data)
    before = snapshot(tool)
    before_ids = sorted(tool.bindings.values_list("identity_id", flat=True))
    identities = data.pop("identities", None)
    found = {name: [] for name in SCANNED_TOOL_TEXT if name in data} | _redact_tool_text(data)
    if "owner" in data and data["owner"] != tool.owner:
        tool.owner = _owner_for(actor, data.pop("owner"))
    data.pop("owner", None)
    _guard(actor, "tool", tool, data)
    _apply(tool, data, TOOL_FIELDS)
    hold_fact_changes(actor=actor, obj=tool, before=before)
    tool.full_clean()
    tool.save()
    _record_secret_matches(tool, found)
    if identities is not None:
        # Keeping an identity someone else bound is fine; adding one needs the right to bind it.
        _check_bindable(actor, [i for i in identities if i.pk not in before_ids])
        _set_identities(tool, list(identities))
    before_diff, after_diff = changed(before, snapshot(tool))
    for name, (old, new) in _set_audience(tool, data).items():
        before_diff[name], after_diff[name] = old, new
    after_ids = sorted(tool.bindings.values_list("identity_id", flat=True))
    if after_ids != before_ids:
        before_diff["identities"], after_diff["identities"] = before_ids, after_ids
    if after_diff:
        audit_record(actor=actor, action="tool.updated", obj=tool, before=before_diff, after=after_diff)
        # issue 18: the changed fields, for the detectors that read them, on this tool and its identities then and now
        changes_record(
            topics=[f"tool.{name}" for name in after_diff], tools=[tool.pk], identities=before_ids + after_ids
        )
    return tool


@transaction.atomic
def tool_delete(*, actor, tool: AITool) -> None:
    tool = AITool.objects.editable_by(actor).select_for_update().filter(pk=tool.pk).first()
    if tool is None:
        raise PermissionDenied("You cannot delete this tool.")
    audit_record(actor=actor, action="tool.deleted", obj=tool, before=snapshot(tool))
    bound = list(tool.bindings.values_list("identity_id", flat=True))
    changes_record(topics=["tool"], tools=[tool.pk], identities=bound)  # issue 18: its findings resolve now
    # Its grants must not outlive it as grants for "any tool".
    ScopeGrant.objects.filter(tool=tool, status=GrantStatus.ACTIVE).update(
        status=GrantStatus.REVOKED, revoked_at=timezone.now(), revoke_reason=f"Tool {tool.slug} was deleted."
    )
    tool.delete()


def _set_tools(actor, identity: ServiceIdentity, tools: list[AITool]) -> None:
    """Bind an identity to exactly these tools; adding or removing a binding needs the right to edit the tool."""
    wanted = {t.pk for t in tools}
    current = set(identity.bindings.values_list("tool_id", flat=True))
    touched = wanted ^ current
    if touched and AITool.objects.editable_by(actor).filter(pk__in=touched).count() != len(touched):
        raise PortalError("You can only bind identities to tools you can edit.", field="tools")
    identity.bindings.filter(tool_id__in=current - wanted).delete()
    ToolIdentity.objects.bulk_create([ToolIdentity(tool_id=pk, identity=identity) for pk in wanted - current])


@transaction.atomic
def identity_create(*, actor, data: dict[str, Any]) -> ServiceIdentity:
    _require_writer(actor)
    identity = ServiceIdentity()
    _guard(actor, "identity", identity, data)
    _apply(identity, data, IDENTITY_FIELDS)
    identity.owner = _owner_for(actor, data.get("owner"))
    identity.full_clean()
    identity.save()
    if data.get("tools"):
        _set_tools(actor, identity, list(data["tools"]))
    audit_record(actor=actor, action="identity.created", obj=identity, after=snapshot(identity))
    changes_record(topics=["identity"], identities=[identity.pk])  # issue 18: detect now
    return identity


@transaction.atomic
def identity_update(*, actor, identity: ServiceIdentity, data: dict[str, Any]) -> ServiceIdentity:
    identity = ServiceIdentity.objects.editable_by(actor).select_for_update().filter(pk=identity.pk).first()
    if identity is None:
        raise PermissionDenied("You cannot edit this identity.")
    data = dict(data)
    before = snapshot(identity)
    if "owner" in data and data["owner"] != identity.owner:
        identity.owner = _owner_for(actor, data["owner"])
    data.pop("owner", None)
    _guard(actor, "identity", identity, data)
    _apply(identity, data, IDENTITY_FIELDS)
    hold_fact_changes(actor=actor, obj=identity, before=before)
    identity.full_clean()
    identity.save()
    before_diff, after_diff = changed(before, snapshot(identity))
    if data.get("tools") is not None:
        before_tools = sorted(identity.bindings.values_list("tool_id", flat=True))
        _set_tools(actor, identity, list(data["tools"]))
        after_tools = sorted(identity.bindings.values_list("tool_id", flat=True))
        if before_tools != after_tools:
            before_diff["tools"], after_diff["tools"] = before_tools, after_tools
    if after_diff:
        audit_record(actor=actor, action="identity.updated", obj=identity, before=before_diff, after=after_diff)
        # issue 18: bindings removed here are re-checked through the tools they left
        changes_record(topics=[f"identity.{name}" for name in after_diff], identities=[identity.pk],
                       tools=before_diff.get("tools", []))  # fmt: skip
    return identity


def _digest_into(credential: Credential, secret: str) -> None:
    problem = validate_secret(secret)
    if problem:
        raise PortalError(problem, field="secret")
    digest = digest_secret(secret)
    credential.fingerprint, credential.last4 = digest.fingerprint, digest.last4


@transaction.atomic
def credential_create(
    *, actor, identity: ServiceIdentity, data: dict[str, Any], secret: str | None = None
) -> Credential:
    """Record a credential. A submitted `secret` is fingerprinted here and dropped."""
    if not ServiceIdentity.objects.editable_by(actor).filter(pk=identity.pk).exists():
        raise PermissionDenied("You cannot add credentials to this identity.")
    credential = Credential(identity=identity)
    _guard(actor, "credential", credential, data)
    _apply(credential, data, CREDENTIAL_FIELDS)
    credential.created_at = data.get("created_at") or timezone.now()
    if secret:
        _digest_into(credential, secret)
    elif data.get("fingerprint"):
        if not FINGERPRINT_RE.match(data["fingerprint"]):
            raise PortalError("A fingerprint looks like hmac-sha256:<64 hex digits>; send a secret as `secret`.",
                              field="fingerprint")  # fmt: skip
        credential.fingerprint, credential.last4 = data["fingerprint"], data.get("last4", "")
    else:
        raise PortalError("Provide the secret (it is fingerprinted and dropped) or its fingerprint.", field="secret")
    if Credential.objects.filter(identity=identity, fingerprint=credential.fingerprint).exists():
        raise PortalError("This identity already has a credential with that secret.", field="secret")
    credential.full_clean()
    credential.save()
    audit_record(actor=actor, action="credential.created", obj=credential, after=snapshot(credential))
    # issue 18: detect now; a new credential may end a containment (with the compromised one revoked)
    changes_record(topics=["credential"], identities=[identity.pk])
    compromise_lift(identity_ids=[identity.pk], actor_label=actor.get_username())
    return credential


@transaction.atomic
def credential_update(*, actor, credential: Credential, data: dict[str, Any], secret: str | None = None) -> Credential:
    """Change a credential's dates or storage; a new `secret` records a rotation."""
    credential = Credential.objects.editable_by(actor).select_for_update().filter(pk=credential.pk).first()
    if credential is None:
        raise PermissionDenied("You cannot edit this credential.")
    before = snapshot(credential)
    _guard(actor, "credential", credential, data)
    _apply(credential, data, CREDENTIAL_FIELDS)
    hold_fact_changes(actor=actor, obj=credential, before=before)
    if secret:
        _digest_into(credential, secret)
        credential.last_rotated_at = data.get("last_rotated_at") or timezone.now()
    credential.full_clean()
    credential.save()
    before_diff, after_diff = changed(before, snapshot(credential))
    if after_diff:
        audit_record(actor=actor, action="credential.updated", obj=credential, before=before_diff, after=after_diff)
        # issue 18: detect now; revoking the compromised credential may end a containment
        changes_record(topics=[f"credential.{name}" for name in after_diff], identities=[credential.identity_id])
        compromise_lift(identity_ids=[credential.identity_id], actor_label=actor.get_username())
    return credential
