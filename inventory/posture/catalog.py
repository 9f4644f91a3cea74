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
FRAMEWORK_FIELDS = ("name", "version", "catalog_revision", "publisher", "source", "verification", "url")
CONTROL_FIELDS = ("title", "description", "legacy_ids", "order")


@dataclass
class LoadResult:
    frameworks_created: int = 0
    frameworks_updated: int = 0
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
        document["_file"] = path.name
        documents.append(document)
    return documents


def load_frameworks(*, framework_model=None, control_model=None, directory: Path = CATALOG_DIR) -> LoadResult:
    """Upsert every framework and control in the catalog. Models can be passed in (for data migrations)."""
    if framework_model is None:
        from inventory.models import Control, Framework

        framework_model, control_model = Framework, Control
    result = LoadResult()
    now = timezone.now()
    with transaction.atomic():
        for document in read_catalog(directory):
            result.files.append(document["_file"])
            values = {name: document.get(name, "" if name != "catalog_revision" else 1) for name in FRAMEWORK_FIELDS}
            framework = framework_model.objects.filter(key=document["key"]).first()
            if framework is None:
                framework = framework_model.objects.create(key=document["key"], **values)
                result.frameworks_created += 1
            elif any(getattr(framework, k) != v for k, v in values.items()):
                framework_model.objects.filter(pk=framework.pk).update(**values)
                result.frameworks_updated += 1
            existing = {c.control_id: c for c in control_model.objects.filter(framework=framework)}
            listed = set()
            for order, item in enumerate(document["controls"], start=1):
                listed.add(item["id"])
                wanted = {
                    "title": item["title"],
                    "description": item.get("description", ""),
                    "legacy_ids": item.get("legacy_ids", []),
                    "order": item.get("order", order),
                }
                control = existing.get(item["id"])
                if control is None:
                    control_model.objects.create(framework=framework, control_id=item["id"], **wanted)
                    result.controls_created += 1
                elif control.retired_at is not None or any(getattr(control, k) != v for k, v in wanted.items()):
                    control_model.objects.filter(pk=control.pk).update(retired_at=None, **wanted)
                    result.controls_updated += 1
                else:
                    result.unchanged += 1
            gone = [c.pk for cid, c in existing.items() if cid not in listed and c.retired_at is None]
            result.controls_retired += control_model.objects.filter(pk__in=gone).update(retired_at=now)
    return result
