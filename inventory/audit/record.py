"""Writing audit entries. Called inside the service's transaction, so the entry and the change commit together."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import models
from django.forms.models import model_to_dict

from inventory.models import AuditEntry

# How late a transaction may commit after it took its id: readers that follow an id order (sealing, the usage
# roll-up) stop this far short of now, so an entry committed late is never skipped.
GRACE = timedelta(seconds=30)

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
        object_id=str(obj.pk)[:64],  # API tokens are keyed by a 128-character digest
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


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One object a set-based write created (`before` is None) or changed (only the changed fields)."""

    action: str
    object_type: str
    object_id: int | str
    label: str
    before: dict | None
    after: dict


def audit_changes(*, actor, changes: Iterable[ObjectChange], comment: str = "", batch_size: int = 1000) -> int:
    """One entry per object a person's set-based write touched (an import), inserted in batches; returns the count.

    The caller builds before / after from what it already holds, so the trail costs one INSERT per batch and never
    a read per object. They must be JSON-safe and secret-free: this helper stores them as given.
    """
    entries = [
        AuditEntry(
            actor=actor,
            actor_label=actor.get_username(),
            action=change.action,
            object_type=change.object_type,
            object_id=str(change.object_id),
            object_repr=change.label[:255],
            before=change.before,
            after=change.after,
            comment=comment,
        )
        for change in changes
    ]
    AuditEntry.objects.bulk_create(entries, batch_size=batch_size)
    return len(entries)
