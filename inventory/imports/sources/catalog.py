"""The AI catalog (`ai_catalog.json`, versioned data) and the matcher that finds known AI tools among discovered
identities. A match is a suggestion for security, never a registration: accepting it is a separate decision.

Matching is one dictionary lookup for exact rules (GitHub App slugs, API-key vendors, publisher tenants) and one
compiled alternation of every phrase for names, so it costs the same per identity whatever the catalog's size.
"""

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from inventory.audit.record import ObjectChange
from inventory.models import AIToolSuggestion, ToolIdentity

from .records import IdentityRecord

PATH = Path(__file__).with_name("ai_catalog.json")
BATCH = 1000
# Record match keys read as names (phrases) and as exact identifiers.
_EXACT = {"github_app": "github_apps", "vendor": "api_key_vendors", "publisher_tenant": "publisher_tenants"}


@dataclass(frozen=True)
class CatalogTool:
    key: str
    name: str
    vendor: str
    kind: str


@dataclass(frozen=True)
class Catalog:
    version: str
    tools: dict[str, CatalogTool]
    exact: dict[tuple[str, str], str]
    phrases: dict[str, str]
    pattern: re.Pattern | None

    def match(self, names: dict[str, str]) -> str | None:
        """The catalog key of the first rule that recognises an identity's names, or None."""
        for name, value in names.items():
            rule = _EXACT.get(name)
            if rule and value and (key := self.exact.get((rule, value.lower()))):
                return key
        if self.pattern is None:
            return None
        for name, value in names.items():
            if name not in _EXACT and value and (found := self.pattern.search(value)):
                return self.phrases[found.group(0).lower()]
        return None


@cache
def load() -> Catalog:
    data = json.loads(PATH.read_text(encoding="utf-8"))
    tools, exact, phrases = {}, {}, {}
    for entry in data["tools"]:
        tools[entry["key"]] = CatalogTool(entry["key"], entry["name"], entry["vendor"], entry["kind"])
        for rule, values in entry["match"].items():
            for value in values:
                if rule == "app_names":
                    phrases.setdefault(value.lower(), entry["key"])
                else:
                    exact.setdefault((rule, value.lower()), entry["key"])
    # Longest first, so "Microsoft 365 Copilot" wins over a shorter phrase inside it.
    alternatives = sorted(phrases, key=len, reverse=True)
    pattern = None
    if alternatives:
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)", re.IGNORECASE)
    return Catalog(version=data["version"], tools=tools, exact=exact, phrases=phrases, pattern=pattern)


def suggest(records: list[IdentityRecord], identity_pks: dict[str, int], *, actor) -> list[ObjectChange]:
    """Attach the identities the catalog recognises to their suggestions (created as needed), set-based.

    An accepted suggestion's tool gets the newly matched identities bound as well: it is already registered.
    Returns the audit changes (new suggestions, new bindings)."""
    catalog = load()
    matched: dict[str, set[int]] = {}
    for record in records:
        key = catalog.match(record.match) if record.match else None
        if key is not None:
            matched.setdefault(key, set()).add(identity_pks[record.external_id])
    if not matched:
        return []
    existing = {s.catalog_key: s for s in AIToolSuggestion.objects.filter(catalog_key__in=matched)}
    new = [
        AIToolSuggestion(catalog_key=key, name=catalog.tools[key].name, vendor=catalog.tools[key].vendor,
                         tool_kind=catalog.tools[key].kind, catalog_version=catalog.version)
        for key in sorted(matched.keys() - existing.keys())
    ]  # fmt: skip
    AIToolSuggestion.objects.bulk_create(new)
    changes = [
        ObjectChange(action="ai_suggestion.created", object_type="inventory.aitoolsuggestion", object_id=s.pk,
                     label=str(s), before=None,
                     after={"catalog_key": s.catalog_key, "catalog_version": s.catalog_version})
        for s in new
    ]  # fmt: skip
    existing |= {s.catalog_key: s for s in new}
    through = AIToolSuggestion.identities.through
    by_pk = {s.pk: s for s in existing.values()}
    wanted = {(existing[key].pk, pk) for key, pks in matched.items() for pk in pks}
    have = set(
        through.objects.filter(aitoolsuggestion_id__in=by_pk).values_list("aitoolsuggestion_id", "serviceidentity_id")
    )
    added = sorted(wanted - have)
    through.objects.bulk_create(
        [through(aitoolsuggestion_id=s, serviceidentity_id=i) for s, i in added], batch_size=BATCH
    )
    bindings = [(by_pk[s].tool_id, i) for s, i in added if by_pk[s].tool_id is not None]
    if bindings:
        bound = set(
            ToolIdentity.objects.filter(tool_id__in={t for t, _ in bindings}).values_list("tool_id", "identity_id")
        )
        fresh = [ToolIdentity(tool_id=t, identity_id=i) for t, i in bindings if (t, i) not in bound]
        ToolIdentity.objects.bulk_create(fresh, batch_size=BATCH)
        changes += [
            ObjectChange(action="binding.discovered", object_type="inventory.toolidentity", object_id=b.pk,
                         label=f"{b.tool_id} -> {b.identity_id}", before=None,
                         after={"tool": b.tool_id, "identity": b.identity_id})
            for b in fresh
        ]  # fmt: skip
    return changes
