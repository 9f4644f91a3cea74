"""Writing audit entries. Called inside the service's transaction, so the entry and the change commit together."""

from typing import Any

from django.db import models
from django.forms.models import model_to_dict

from .models import AuditEntry

# Fields that never belong in an audit snapshot.
_EXCLUDED = {"updated_at"}


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The concrete field values of an object, as JSON-ready data (foreign keys by id)."""
    fields = [f.name for f in instance._meta.concrete_fields if f.name not in _EXCLUDED]
    data = model_to_dict(instance, fields=fields)
    data["id"] = instance.pk
    return data


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model,
    before: dict | None = None,
    after: dict | None = None,
    comment: str = "",
    actor_label: str | None = None,
) -> AuditEntry:
    human = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=human,
        actor_label=actor_label or (human.get_username() if human else "system"),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:255],
        before=before,
        after=after,
        comment=comment,
    )


def changed(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the fields that changed, so entries stay readable."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def audit_many(
    *,
    action: str,
    object_type: str,
    objects: list[tuple[int, str]],
    before: dict | None,
    after: dict | None,
    actor_label: str,
    comment: str = "",
) -> None:
    """One entry per object for a set-based change made by a job, inserted in one statement."""
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                actor=None,
                actor_label=actor_label,
                action=action,
                object_type=object_type,
                object_id=str(pk),
                object_repr=label[:255],
                before=before,
                after=after,
                comment=comment,
            )
            for pk, label in objects
        ],
        batch_size=1000,
    )
