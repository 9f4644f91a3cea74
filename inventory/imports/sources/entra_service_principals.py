"""Microsoft Entra service principals (Graph `GET /servicePrincipals`: `{"value": [...]}`). Field names are Graph's.

A service principal whose `appOwnerOrganizationId` is not the home tenant (`account=` the tenant id) belongs to an
app another organization publishes: third-party. Its `passwordCredentials` (client secrets) and `keyCredentials`
(certificates) become credentials with their start and end; Graph never returns the secret, and the `hint` (its
first characters) is not kept. Graph lists no last use here, so unused is unknown for these.
"""

import re

from inventory.choices import CredentialKind, IdentityKind

from .records import (
    CredentialRecord,
    IdentityRecord,
    Parsed,
    Problems,
    Row,
    flag,
    identifier,
    items,
    load_json,
    moment,
    text,
    top_list,
)

KIND = "entra-service-principals"
PROVIDER = "entra"
DESCRIPTION = (
    'Graph JSON `{"value": [...]}` from `GET https://graph.microsoft.com/v1.0/servicePrincipals` (`az rest`, all '
    "pages merged). Pass `account=<tenant id>` so apps of other tenants are marked third-party. Client secrets and "
    "certificates become credentials."
)
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
NO_TENANT = (
    "account= is not a tenant id, so no service principal can be told first- from third-party: every one whose "
    "appOwnerOrganizationId is set is treated as third-party."
)


def parse(raw: bytes, *, account: str = "") -> Parsed:
    entries, envelope = top_list(load_json(raw), "value")
    parsed, errors = Parsed(), Problems()
    home = account.lower() if GUID.match(account) else None
    if home is None:
        parsed.warnings.append({"path": "", "field": "account", "message": NO_TENANT})
    for i, data in enumerate(entries):
        row = Row(data, f"{envelope}[{i}]", errors)
        if not row.ok:
            continue
        sp_id = row.get("id", identifier)
        app_id = row.get("appId", text, required=False, default="")
        name = row.get("displayName", text, max_length=200)
        sp_type = row.get("servicePrincipalType", text, required=False, default="Application")
        enabled = row.get("accountEnabled", flag, required=False, default=True)
        owner_org = row.get("appOwnerOrganizationId", text, required=False, default=None)
        secrets = row.get("passwordCredentials", items, required=False, default=[])
        certs = row.get("keyCredentials", items, required=False, default=[])
        if not row.ok:
            continue
        foreign = owner_org is not None and (home is None or owner_org.lower() != home)
        parsed.identities.append(
            IdentityRecord(
                external_id=sp_id,
                label=name,
                kind=IdentityKind.WORKLOAD_IDENTITY if sp_type == "ManagedIdentity" else IdentityKind.OAUTH_CLIENT,
                where=row.where(),
                third_party=foreign,
                active=enabled,
                match={"app_name": name, "publisher_tenant": (owner_org or "").lower()},
                attributes={"appId": app_id, "servicePrincipalType": sp_type, "appOwnerOrganizationId": owner_org},
            )
        )
        for listing, kind, field_name in (
            (secrets, CredentialKind.CLIENT_SECRET, "passwordCredentials"),
            (certs, CredentialKind.CERTIFICATE, "keyCredentials"),
        ):
            for n, entry in enumerate(listing):
                cred = Row(entry, f"{row.path}.{field_name}[{n}]", errors)
                key_id = cred.get("keyId", text, max_length=100)
                label = cred.get("displayName", text, required=False, default="", blank=True, max_length=200)
                start = cred.get("startDateTime", moment, required=False)
                end = cred.get("endDateTime", moment, required=False)
                if not cred.ok:
                    continue
                parsed.credentials.append(
                    CredentialRecord(
                        external_id=f"{sp_id}#{field_name}:{key_id}",
                        identity_external_id=sp_id,
                        kind=kind,
                        where=cred.where(),
                        created_at=start,
                        expires_at=end,
                        last_use_known=False,
                        attributes={"displayName": label},
                    )
                )
    errors.raise_if_any()
    return parsed
