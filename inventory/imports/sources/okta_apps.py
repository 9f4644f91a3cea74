"""Okta applications (`GET /api/v1/apps`). Field names are Okta's.

An app is a client of the org's identities: an OAuth / SAML client identity. `name` is the Okta Integration Network
catalog name (`slack`, `zoomus`...) or a custom app's sign-on kind (`oidc_client`, `bookmark`, `template_*`):
catalog apps are run by a vendor, so third-party. `status` INACTIVE: disabled. `credentials` are the app's sign-on
settings; Okta never lists a client secret here, and nothing from it is kept but the OAuth client id.
"""

from inventory.choices import IdentityKind

from .records import IdentityRecord, Parsed, Problems, identifier, listed_rows, moment, obj, text

KIND = "okta-apps"
PROVIDER = "okta"
DESCRIPTION = (
    "JSON array from `GET https://ORG.okta.com/api/v1/apps` (all pages; e.g. `okta-cli` or curl with an SSWS "
    "token). Each app becomes an OAuth client identity (app id); Okta Integration Network apps are third-party."
)
# Okta's names for apps an org builds itself rather than adds from the catalog.
CUSTOM = {"oidc_client", "bookmark", "template_basic_auth", "template_swa", "template_swa3field", "template_sps"}
STATUSES = {"ACTIVE", "INACTIVE", "DELETED"}


def parse(raw: bytes, *, account: str = "") -> Parsed:
    parsed, errors = Parsed(), Problems()
    for row in listed_rows(raw, errors):
        app_id = row.get("id", identifier)
        name = row.get("name", text, max_length=200)
        label = row.get("label", text, max_length=200)
        status = row.get("status", text)
        sign_on = row.get("signOnMode", text, required=False, default="")
        row.get("created", moment, required=False)
        row.get("lastUpdated", moment, required=False)
        credentials = row.get("credentials", obj, required=False, default={})
        if status is not None and status not in STATUSES:
            row.fail("status", "Must be ACTIVE, INACTIVE or DELETED.")
        if not row.ok:
            continue
        client = credentials.get("oauthClient") if isinstance(credentials, dict) else None
        client_id = client.get("client_id") if isinstance(client, dict) else None
        parsed.identities.append(
            IdentityRecord(
                external_id=app_id,
                label=label,
                kind=IdentityKind.OAUTH_CLIENT,
                where=row.where(),
                third_party=name not in CUSTOM and not name.startswith("template_"),
                active=status == "ACTIVE",
                match={"app_name": name, "label": label},
                attributes={
                    "name": name,
                    "signOnMode": sign_on,
                    "status": status,
                    "client_id": client_id if isinstance(client_id, str) else None,
                },
            )
        )
    errors.raise_if_any()
    return parsed
