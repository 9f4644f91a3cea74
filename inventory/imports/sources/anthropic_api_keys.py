"""Anthropic API keys (Admin API `GET /v1/organizations/api_keys`: `{"data": [...], "has_more", ...}`). Field
names are Anthropic's.

Each key is an API-key identity with one credential, owned by `created_by` when a portal user has that id as username
or e-mail. `status` active / inactive / archived: only active keys work. `partial_key_hint` is part of the key and is
not kept. Anthropic reports no last use, so whether a key is unused is unknown, never "unused".
"""

from inventory.choices import CredentialKind, IdentityKind

from .records import IdentityRecord, Parsed, Problems, add_key, identifier, listed_rows, moment, obj, text

KIND = "anthropic-api-keys"
PROVIDER = "anthropic"
DESCRIPTION = (
    'JSON list (or `{"data": [...]}`) from `GET https://api.anthropic.com/v1/organizations/api_keys` with an '
    "admin key (all pages). Each key becomes an API-key identity (key id) with one credential; last use is unknown."
)
STATUSES = {"active", "inactive", "archived"}


def parse(raw: bytes, *, account: str = "") -> Parsed:
    parsed, errors = Parsed(), Problems()
    for row in listed_rows(raw, errors, "data"):
        key_id = row.get("id", identifier)
        name = row.get("name", text, max_length=200)
        workspace = row.get("workspace_id", text, required=False, default=None)
        created = row.get("created_at", moment, nullable=False)
        created_by = row.get("created_by", obj, required=False, default={})
        row.get("partial_key_hint", text, required=False)  # checked, never kept
        status = row.get("status", text)
        if status is not None and status not in STATUSES:
            row.fail("status", "Must be active, inactive or archived.")
        if not row.ok:
            continue
        creator = created_by.get("id") if isinstance(created_by, dict) else None
        identity = IdentityRecord(
            external_id=key_id, label=name, kind=IdentityKind.API_KEY, where=row.where(), active=status == "active",
            owner_hint=creator[:255] if isinstance(creator, str) else "", match={"vendor": "anthropic", "name": name},
            attributes={"workspace_id": workspace, "status": status},
        )  # fmt: skip
        add_key(parsed, identity, suffix="key", kind=CredentialKind.API_KEY, created_at=created, last_use_known=False,
                revoked=status != "active", revoked_reason=f"Key {status} at the source.")  # fmt: skip
    errors.raise_if_any()
    return parsed
