"""Okta API tokens (`GET /api/v1/api-tokens`). Field names are Okta's.

A token acts with the privileges of the admin who made it (`userId`): an API key owned by that person. `clientName`
says what made it (Okta API, or an integration). The token value is never listed. Okta reports no last use (the
expiry slides with use instead), so unused is unknown for these, never assumed.
"""

from inventory.choices import CredentialKind, IdentityKind

from .records import IdentityRecord, Parsed, Problems, add_key, identifier, listed_rows, moment, obj, text

KIND = "okta-api-tokens"
PROVIDER = "okta"
DESCRIPTION = (
    "JSON array from `GET https://ORG.okta.com/api/v1/api-tokens`. Each token becomes an API-key identity (token "
    "id) owned by `userId` when a portal user has that username or e-mail, with one credential."
)


def parse(raw: bytes, *, account: str = "") -> Parsed:
    parsed, errors = Parsed(), Problems()
    for row in listed_rows(raw, errors):
        token_id = row.get("id", identifier)
        name = row.get("name", text, max_length=200)
        user_id = row.get("userId", text, max_length=200)
        client_name = row.get("clientName", text, required=False, default="", max_length=200)
        created = row.get("created", moment, nullable=False)
        expires = row.get("expiresAt", moment, required=False)
        network = row.get("network", obj, required=False, default={})
        if not row.ok:
            continue
        identity = IdentityRecord(
            external_id=token_id, label=name, kind=IdentityKind.API_KEY, where=row.where(), owner_hint=user_id,
            match={"client_name": client_name, "name": name},
            attributes={"clientName": client_name, "network": network},
        )  # fmt: skip
        add_key(parsed, identity, suffix="token", kind=CredentialKind.API_KEY, created_at=created, expires_at=expires,
                last_use_known=False)  # fmt: skip
    errors.raise_if_any()
    return parsed
