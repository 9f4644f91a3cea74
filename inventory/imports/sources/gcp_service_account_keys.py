"""GCP service-account keys (`gcloud iam service-accounts keys list --iam-account=SA --format=json`, one or many
accounts concatenated into one JSON array).

Field names are Google's. A key's `name` is `projects/PROJECT/serviceAccounts/EMAIL/keys/KEY_ID`: the service
account e-mail is the identity, the key the credential. SYSTEM_MANAGED keys are Google's own and rotated by Google;
they show the account exists but are not credentials anyone holds. A `disableReason` of
SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED means Google found the key exposed: a finding of its own.
"""

import re
from collections.abc import Iterator

from inventory.choices import CredentialKind, IdentityKind

from .records import CredentialRecord, IdentityRecord, Parsed, Problems, Row, flag, load_json, moment, text, top_list

Record = IdentityRecord | CredentialRecord

KIND = "gcp-service-account-keys"
PROVIDER = "gcp"
DESCRIPTION = (
    "JSON array from `gcloud iam service-accounts keys list --iam-account=EMAIL --format=json` (concatenate the "
    "arrays of several accounts). Service accounts become identities (their e-mail), user-managed keys credentials."
)
NAME = re.compile(r"projects/(?P<project>[^/]+)/serviceAccounts/(?P<email>[^/]+)/keys/(?P<key>[^/]+)\Z")
KEY_TYPES = {"USER_MANAGED", "SYSTEM_MANAGED", "KEY_TYPE_UNSPECIFIED"}
EXPOSED = "SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED"
# Google's "no expiry" (validBeforeTime of user-managed keys without an expiry policy).
NEVER = 9999


def parse(raw: bytes, *, account: str = "") -> Parsed:
    """The whole listing at once (small files, tests); raises SourceRejected listing every error."""
    parsed, errors = Parsed(), Problems()
    for record in stream(raw, account=account, errors=errors, warnings=parsed.warnings):
        (parsed.identities if isinstance(record, IdentityRecord) else parsed.credentials).append(record)
    errors.raise_if_any()
    return parsed


def stream(raw: bytes, *, account: str = "", errors: Problems, warnings: list) -> Iterator[Record]:
    """Each service account (when first named), then its keys, as the listing is read. Row problems go to `errors`
    (the caller rejects the file); a file that is not such a listing raises at once."""
    entries, envelope = top_list(load_json(raw), "keys")
    accounts: set[str] = set()
    for i, data in enumerate(entries):
        row = Row(data, f"{envelope}[{i}]", errors)
        if not row.ok:
            continue
        name = row.get("name", text, max_length=400)
        key_type = row.get("keyType", text, required=False, default="USER_MANAGED")
        row.get("keyAlgorithm", text, required=False)
        row.get("keyOrigin", text, required=False)
        valid_after = row.get("validAfterTime", moment, nullable=False)
        valid_before = row.get("validBeforeTime", moment, required=False)
        disabled = row.get("disabled", flag, required=False, default=False)
        reason = row.get("disableReason", text, required=False, default="", blank=True)
        match = NAME.match(name) if isinstance(name, str) else None
        if name is not None and match is None:
            row.fail("name", "Must be projects/PROJECT/serviceAccounts/EMAIL/keys/KEY_ID.")
        if key_type is not None and key_type not in KEY_TYPES:
            row.fail("keyType", "Must be USER_MANAGED or SYSTEM_MANAGED.")
        if not row.ok:
            continue
        email = match["email"]
        if email not in accounts:
            accounts.add(email)
            yield IdentityRecord(
                external_id=email,
                label=email,
                kind=IdentityKind.SERVICE_ACCOUNT,
                where=row.where(),
                attributes={"project": match["project"]},
            )
        if key_type != "USER_MANAGED":
            continue
        yield (
            CredentialRecord(
                external_id=name,
                identity_external_id=email,
                kind=CredentialKind.API_KEY,
                where=row.where(),
                created_at=valid_after,
                expires_at=None if valid_before is None or valid_before.year >= NEVER else valid_before,
                # Key listings carry no use; Cloud Monitoring's key usage metric is elsewhere.
                last_use_known=False,
                revoked=disabled,
                revoked_reason="Disabled at the source" + (f" ({reason})." if reason else "."),
                exposed=reason == EXPOSED,
                attributes={"keyAlgorithm": row.data.get("keyAlgorithm"), "disableReason": reason},
            )
        )
