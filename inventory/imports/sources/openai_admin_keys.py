"""OpenAI organization admin keys and project API keys (the organization API's key listings). Field names are
OpenAI's; times are Unix seconds.

Each key is an API-key identity with one credential. Its `owner` is `{type: "user", user: {email...}}` or
`{type: "service_account", service_account: {...}}` (admin keys list the user in `owner` itself): a user's key is
theirs when a portal user has that e-mail or username; a service account's goes to the Unassigned queue.
`redacted_value` shows part of the key and is not kept. `last_used_at` null means never used.
"""

from inventory.choices import CredentialKind, IdentityKind

from .records import IdentityRecord, Parsed, Problems, add_key, epoch, identifier, listed_rows, obj, text

KIND = "openai-admin-keys"
PROVIDER = "openai"
DESCRIPTION = (
    'JSON list (or `{"data": [...]}`) from `GET https://api.openai.com/v1/organization/admin_api_keys` and '
    "`GET /v1/organization/projects/PROJECT/api_keys` with an admin key. Each key becomes an API-key identity (key "
    "id) with one credential; the owner is matched by e-mail."
)


def _owner(owner: dict) -> str:
    kind = owner.get("type")
    person = owner.get("user") if isinstance(owner.get("user"), dict) else owner
    if kind == "user" and isinstance(person, dict):
        for key in ("email", "name", "id"):
            if isinstance(person.get(key), str) and person[key]:
                return person[key][:255]
    return ""


def parse(raw: bytes, *, account: str = "") -> Parsed:
    parsed, errors = Parsed(), Problems()
    for row in listed_rows(raw, errors, "data"):
        key_id = row.get("id", identifier)
        name = row.get("name", text, max_length=200, blank=True)
        row.get("redacted_value", text, required=False)  # checked, never kept
        created = row.get("created_at", epoch, nullable=False)
        last_used = row.get("last_used_at", epoch, required=False)
        owner = row.get("owner", obj, required=False, default={})
        if isinstance(owner, dict) and owner.get("type") not in (None, "user", "service_account"):
            row.fail("owner.type", "Must be user or service_account.")
        if not row.ok:
            continue
        identity = IdentityRecord(
            external_id=key_id, label=name or key_id, kind=IdentityKind.API_KEY, where=row.where(),
            last_used_at=last_used, owner_hint=_owner(owner), match={"vendor": "openai", "name": name or ""},
            attributes={"owner_type": owner.get("type"), "object": row.data.get("object")},
        )  # fmt: skip
        add_key(parsed, identity, suffix="key", kind=CredentialKind.API_KEY, created_at=created, last_used_at=last_used)
    errors.raise_if_any()
    return parsed
