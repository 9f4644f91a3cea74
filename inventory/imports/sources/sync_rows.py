"""The per-row pieces of the source sync (`sync.py`): the digest of what a source said about an object (the only
reason to look at it again), the provenance flags detectors read, and the audit changes built from values already in
hand (never a read per object)."""

import hashlib
from datetime import datetime
from typing import Any

from inventory.audit.record import ObjectChange
from inventory.models import ServiceIdentity

from .records import CredentialRecord, IdentityRecord


def iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def identity_digest(record: IdentityRecord) -> str:
    """What the source said about an identity; a different digest is the only reason to look at the object."""
    parts = (
        record.label, record.kind, record.third_party, record.active, record.interactive_use_seen,
        iso(record.last_used_at), record.owner_hint, record.is_root, sorted(record.match.items()),
        repr(sorted(record.attributes.items())),
    )  # fmt: skip
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def credential_digest(record: CredentialRecord) -> str:
    parts = (
        record.identity_external_id, record.kind, iso(record.created_at), iso(record.expires_at),
        iso(record.last_used_at), record.last_use_known, record.revoked, record.digest.fingerprint if record.digest
        else "", record.exposed, record.legacy_token, repr(sorted(record.attributes.items())),
    )  # fmt: skip
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def source_fingerprint(provider: str, external_id: str) -> str:
    """What stands in a discovered credential's fingerprint column when no secret was ever seen: marked `source:`, so
    it can never be taken for (or collide with) the keyed fingerprint of a secret."""
    return "source:" + hashlib.sha256(f"{provider}\x1f{external_id}".encode()).hexdigest()


def identity_flags(record: IdentityRecord) -> dict[str, Any]:
    return {"owner_hint": record.owner_hint[:255], "is_root": record.is_root, "last_use_known": True,
            "exposed": False, "legacy_token": False}  # fmt: skip


def credential_flags(record: CredentialRecord) -> dict[str, Any]:
    return {"owner_hint": "", "is_root": bool(record.attributes.get("root")), "last_use_known": record.last_use_known,
            "exposed": record.exposed, "legacy_token": record.legacy_token}  # fmt: skip


def json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def updated_change(action: str, model, pk: int, label: str, before: dict, after: dict, comment: str = ""):
    names = {f.attname: f.name for f in model._meta.concrete_fields}
    after = {names[k]: json_safe(v) for k, v in after.items()}
    if comment:
        after = {**after, "reason": comment}
    return ObjectChange(action=action, object_type=model._meta.label_lower, object_id=pk, label=label,
                        before={names[k]: json_safe(v) for k, v in before.items()}, after=after)  # fmt: skip


def label(model, row: dict) -> str:
    # A credential's label would need its identity; the kind and last four say enough in the trail.
    return row["name"] if model is ServiceIdentity else f"{row['kind']} credential {row['id']}"


def preview(change: ObjectChange) -> dict[str, Any]:
    return {"action": change.action, "object": change.label, "before": change.before, "after": change.after}
