"""The per-object audit of a bulk import: one entry for each object it created or changed, with before and after.

Built from what the import already holds in memory (existing rows as `.values()` dicts, the values it writes and
the instances it inserted), so the trail costs one INSERT per batch of entries and never a read per object.
Entries name fields as the audit snapshots of the services do (`owner`, not `owner_id`). Credentials only ever
carry their fingerprint and last four characters here: the import drops a secret before any of this runs.
"""

from typing import Any

from django.db import models

from inventory.audit.record import ObjectChange, snapshot
from inventory.models import AITool, Credential, Scope, ScopeGrant, ServiceIdentity, Team, ToolIdentity

ACTIONS: dict[type[models.Model], str] = {
    Team: "team.imported",
    Scope: "scope.imported",
    AITool: "tool.imported",
    ServiceIdentity: "identity.imported",
    ToolIdentity: "binding.imported",
    Credential: "credential.imported",
    ScopeGrant: "grant.imported",
}


def created(obj: models.Model, label: str | None = None) -> ObjectChange:
    """A created object: `before` is None and `after` is its full snapshot, defaults included."""
    return ObjectChange(
        action=ACTIONS[type(obj)],
        object_type=obj._meta.label_lower,
        object_id=obj.pk,
        label=label if label is not None else str(obj),
        before=None,
        after=snapshot(obj),
    )


def updated(obj: models.Model, before: dict[str, Any], after: dict[str, Any], label: str | None = None) -> ObjectChange:
    """A changed object: the changed fields' old and new values, keyed by attribute name (`owner_id`) on the way in."""
    names = {f.attname: f.name for f in obj._meta.concrete_fields}
    return ObjectChange(
        action=ACTIONS[type(obj)],
        object_type=obj._meta.label_lower,
        object_id=obj.pk,
        label=label if label is not None else str(obj),
        before={names[k]: v for k, v in before.items()},
        after={names[k]: v for k, v in after.items()},
    )
