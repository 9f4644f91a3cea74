"""Okta API tokens (`GET /api/v1/api-tokens`). Field names are Okta's.

A token acts with the privileges of the admin who made it (`userId`): an API key owned by that person. `clientName`
says what made it (Okta API, or an integration). The token value is never listed. Okta reports no last use (the
expiry slides with use instead), so unused is unknown for these, never assumed.
"""

from inventory.choices import CredentialKind, IdentityKind

from .records import (
    CredentialRecord,
    IdentityRecord,
    Parsed,
    Problems,
    Row,
    identifier,
    load_json,
    moment,
    obj,
    text,
    top_list,
)

KIND = "okta-api-tokens"
PROVIDER = "okta"
DESCRIPTION = (
    "JSON array from `GET https://ORG.okta.com/api/v1/api-tokens`. Each token becomes an API-key identity (token "
    "id) owned by `userId` when a portal user has that username or e-mail, with one credential."
)


def parse(raw: bytes, *, account: str = "") -> Parsed:
    entries, _ = top_list(load_json(raw))
    parsed, errors = Parsed(), Problems()
    for i, data in enumerate(entries):
        row = Row(data, f"[{i}]", errors)
        if not row.ok:
            continue
        token_id = row.get("id", identifier)
        name = row.get("name", text, max_length=200)
        user_id = row.get("userId", text, max_length=200)
        client_name = row.get("clientName", text, required=False, default="", max_length=200)
        created = row.get("created", moment, nullable=False)
        expires = row.get("expiresAt", moment, required=False)
        network = row.get("network", obj, required=False, default={})
        if not row.ok:
            continue
        parsed.identities.append(
            IdentityRecord(
                external_id=token_id,
                label=name,
                kind=IdentityKind.API_KEY,
                where=row.where(),
                owner_hint=user_id,
                match={"client_name": client_name, "name": name},
                attributes={"clientName": client_name, "network": network},
            )
        )
        parsed.credentials.append(
            CredentialRecord(
                external_id=f"{token_id}#token",
                identity_external_id=token_id,
                kind=CredentialKind.API_KEY,
                where=row.where(),
                created_at=created,
                expires_at=expires,
                last_use_known=False,
            )
        )
    errors.raise_if_any()
    return parsed
