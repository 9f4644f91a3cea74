"""Loading the control catalog (inventory/posture/catalogs/*.json) into Framework and Control rows.

Idempotent: loading the same files again changes nothing. A new revision of a file adds controls, updates titles and
descriptions, and retires (never deletes) controls it no longer lists, so snapshots and attestations keep their
meaning. Used by `manage.py load_frameworks` and by a data migration.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"
FRAMEWORK_FIELDS = ("name", "version", "catalog_revision", "publisher", "source", "verification", "url", "groups")
CONTROL_FIELDS = ("title", "description", "legacy_ids", "group", "order")
FRAMEWORK_DEFAULTS = {"catalog_revision": 1, "groups": {}}
CONTROL_DEFAULTS = {"description": "", "legacy_ids": [], "group": ""}


@dataclass
class LoadResult:
    frameworks_created: int = 0
    frameworks_updated: int = 0
    frameworks_skipped: int = 0
    controls_created: int = 0
    controls_updated: int = 0
    controls_retired: int = 0
    unchanged: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.frameworks_created, self.frameworks_updated, self.controls_created, self.controls_updated,
                    self.controls_retired))  # fmt: skip


def read_catalog(directory: Path = CATALOG_DIR) -> list[dict]:
    documents = []
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        ids = [c["id"] for c in document["controls"]]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{path.name}: a control id appears twice")
        groups = document.get("groups", {})
        strays = sorted({c["id"] for c in document["controls"] if c.get("group") and c["group"] not in groups})
        if strays:
            raise ValueError(f"{path.name}: controls in a group the file does not name: {', '.join(strays[:5])}")
        document["_file"] = path.name
        documents.append(document)
    return documents


def _fields(model, names: tuple[str, ...]) -> tuple[str, ...]:
    """The names the model has: a data migration passes the model as it was then (0008 has no `group` yet)."""
    present = {f.name for f in model._meta.get_fields()}
    return tuple(name for name in names if name in present)


def load_frameworks(*, framework_model=None, control_model=None, directory: Path = CATALOG_DIR) -> LoadResult:
    """Upsert every framework and control in the catalog. Models can be passed in (for data migrations).

    Revision-aware: a file whose `catalog_revision` is older than the one loaded is skipped (a stale checkout never
    downgrades the catalog); the same or a newer revision is applied, field by field, so loading twice changes
    nothing. Set-based per framework: one read, one bulk insert and one bulk update, whatever the catalog's size."""
    if framework_model is None:
        from inventory.models import Control, Framework

        framework_model, control_model = Framework, Control
    framework_fields = _fields(framework_model, FRAMEWORK_FIELDS)
    control_fields = _fields(control_model, CONTROL_FIELDS)
    result = LoadResult()
    now = timezone.now()
    with transaction.atomic():
        for document in read_catalog(directory):
            result.files.append(document["_file"])
            values = {name: document.get(name, FRAMEWORK_DEFAULTS.get(name, "")) for name in framework_fields}
            framework = framework_model.objects.filter(key=document["key"]).first()
            if framework is None:
                framework = framework_model.objects.create(key=document["key"], **values)
                result.frameworks_created += 1
            elif framework.catalog_revision > values["catalog_revision"]:
                result.frameworks_skipped += 1
                continue
            elif any(getattr(framework, k) != v for k, v in values.items()):
                framework_model.objects.filter(pk=framework.pk).update(**values)
                result.frameworks_updated += 1
            _load_controls(control_model, control_fields, framework, document["controls"], result, now)
    return result


def _load_controls(control_model, fields: tuple[str, ...], framework, items: list[dict], result, now) -> None:
    existing = {c.control_id: c for c in control_model.objects.filter(framework=framework)}
    created, updated = [], []
    for order, item in enumerate(items, start=1):
        wanted = {name: item.get(name, CONTROL_DEFAULTS.get(name)) for name in fields if name != "order"}
        wanted["order"] = item.get("order", order)
        control = existing.get(item["id"])
        if control is None:
            created.append(control_model(framework=framework, control_id=item["id"], **wanted))
        elif control.retired_at is not None or any(getattr(control, k) != v for k, v in wanted.items()):
            for name, value in wanted.items():
                setattr(control, name, value)
            control.retired_at = None
            updated.append(control)
        else:
            result.unchanged += 1
    control_model.objects.bulk_create(created, batch_size=500)
    control_model.objects.bulk_update(updated, [*fields, "retired_at"], batch_size=500)
    result.controls_created += len(created)
    result.controls_updated += len(updated)
    listed = {item["id"] for item in items}
    gone = [c.pk for cid, c in existing.items() if cid not in listed and c.retired_at is None]
    result.controls_retired += control_model.objects.filter(pk__in=gone).update(retired_at=now)
