"""AWS IAM credential report (CSV from `aws iam get-credential-report`): IAM users and their access keys and certs.

Column names are AWS's. Special values mean something: `N/A` (no such thing: no password, no key, never used),
`no_information` (AWS has no record of use), `not_supported` (the root user has no password setting here). A user
with a console password and an access key is a human-use signal; the root user is `<root_account>`.
"""

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime

from inventory.choices import CredentialKind, IdentityKind

from .records import CredentialRecord, IdentityRecord, Invalid, Parsed, Problems, SourceRejected, file_error, moment

Record = IdentityRecord | CredentialRecord

KIND = "aws-credential-report"
PROVIDER = "aws"
DESCRIPTION = (
    "CSV from IAM GetCredentialReport (`aws iam generate-credential-report`, then `aws iam get-credential-report "
    "--query Content --output text | base64 -d`). IAM users become identities (user ARN), access keys 1 and 2 and "
    "signing certificates 1 and 2 become credentials."
)
COLUMNS = (
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
    "password_next_rotation", "mfa_active", "access_key_1_active", "access_key_1_last_rotated",
    "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
    "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
    "access_key_2_last_used_region", "access_key_2_last_used_service", "cert_1_active", "cert_1_last_rotated",
    "cert_2_active", "cert_2_last_rotated",
)  # fmt: skip
ROOT = "<root_account>"
# Values that stand for "nothing here" rather than a date.
ABSENT = {"N/A", "no_information", "not_supported"}
_CONTROL = re.compile(r"[\x00-\x1f]")


def _bool(value: str) -> bool:
    if value == "true":
        return True
    if value in ("false", "not_supported", "N/A"):
        return False
    raise Invalid("Must be true, false or not_supported.")


def _when(value: str):
    if value in ABSENT:
        return None
    # AWS writes every time as 2025-01-31T12:00:00+00:00: read that shape in C, anything else the general way.
    if len(value) == 25 and value[10] == "T" and value[19] in "+-":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return moment(value, nullable=False)


def parse(raw: bytes, *, account: str = "") -> Parsed:
    """The whole report at once (small files, tests); raises SourceRejected listing every error."""
    parsed, errors = Parsed(), Problems()
    for record in stream(raw, account=account, errors=errors, warnings=parsed.warnings):
        (parsed.identities if isinstance(record, IdentityRecord) else parsed.credentials).append(record)
    errors.raise_if_any()
    return parsed


def stream(raw: bytes, *, account: str = "", errors: Problems, warnings: list) -> Iterator[Record]:
    """Each user, then its keys and certificates, as the report is read: a 100,000-user report is never held as
    records. Row problems go to `errors` (the caller rejects the file); a file-level problem raises at once."""
    if b"\x00" in raw:
        raise SourceRejected([file_error("The file contains NUL bytes; it is not a credential report.")])
    # Decoded as read, not as one string: the report can be tens of megabytes.
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return  # an empty report: nothing listed
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise SourceRejected([{"line": 1, "field": None, "message": "Missing columns: " + ", ".join(missing)}])
        index = {name: header.index(name) for name in COLUMNS}
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                errors.add({"line": line}, None, f"Expected {len(header)} columns, found {len(row)}.")
                continue
            yield from _row(errors, line, {name: row[i] for name, i in index.items()})
    except csv.Error as exc:
        errors.add({"line": reader.line_num}, None, f"Malformed CSV: {exc}.")
    except UnicodeDecodeError:
        raise SourceRejected([file_error("The file is not UTF-8 text.")]) from None


def _row(errors: Problems, line: int, cells: dict[str, str]) -> Iterator[Record]:
    where = {"line": line}
    values: dict = {}
    readers = {
        "user_creation_time": _when, "password_enabled": _bool, "password_last_used": _when,
        "access_key_1_active": _bool, "access_key_1_last_rotated": _when, "access_key_1_last_used_date": _when,
        "access_key_2_active": _bool, "access_key_2_last_rotated": _when, "access_key_2_last_used_date": _when,
        "cert_1_active": _bool, "cert_1_last_rotated": _when, "cert_2_active": _bool, "cert_2_last_rotated": _when,
    }  # fmt: skip
    ok = True
    for name in ("user", "arn"):
        if not cells[name] or _CONTROL.search(cells[name]) or len(cells[name]) > 400:
            errors.add(where, name, "Must be a non-empty one-line value of at most 400 characters.")
            ok = False
    if cells["arn"] and not cells["arn"].startswith("arn:"):
        errors.add(where, "arn", "Must be an ARN (arn:aws:iam::ACCOUNT:user/NAME).")
        ok = False
    for name, read in readers.items():
        try:
            values[name] = read(cells[name])
        except Invalid as exc:
            errors.add(where, name, str(exc))
            ok = False
    if not ok:
        return
    arn, is_root = cells["arn"], cells["user"] == ROOT
    keys_active = values["access_key_1_active"] or values["access_key_2_active"]
    used = [values[f"access_key_{n}_last_used_date"] for n in (1, 2)] + [values["password_last_used"]]
    used = [when for when in used if when is not None]
    yield IdentityRecord(
        external_id=arn,
        label=("root" if is_root else cells["user"]) + "@" + arn.split(":")[4] if arn.count(":") >= 5 else arn,
        kind=IdentityKind.SERVICE_ACCOUNT,
        where=where,
        # A console password beside live keys: a person signs in as this "service" user.
        interactive_use_seen=bool(values["password_enabled"] and keys_active and not is_root),
        last_used_at=max(used) if used else None,
        is_root=is_root,
        attributes={"mfa_active": cells["mfa_active"] == "true", "password_enabled": values["password_enabled"]},
    )
    for n in (1, 2):
        created = values[f"access_key_{n}_last_rotated"]
        if created is None:
            continue  # N/A: there is no key in this slot
        # The report has no key id; a key is its slot and creation time, so a rotated key is a new credential.
        yield CredentialRecord(
            external_id=f"{arn}#access_key_{n}@{created.isoformat()}",
            identity_external_id=arn,
            kind=CredentialKind.API_KEY,
            where=where,
            created_at=created,
            last_used_at=values[f"access_key_{n}_last_used_date"],
            revoked=not values[f"access_key_{n}_active"],
            revoked_reason="Deactivated at the source (access key inactive).",
            attributes={"slot": f"access_key_{n}", "root": is_root},
        )
    for n in (1, 2):
        created = values[f"cert_{n}_last_rotated"]
        if created is None:
            continue
        yield CredentialRecord(
            external_id=f"{arn}#cert_{n}@{created.isoformat()}",
            identity_external_id=arn,
            kind=CredentialKind.CERTIFICATE,
            where=where,
            created_at=created,
            last_use_known=False,  # the report has no last use for signing certificates
            revoked=not values[f"cert_{n}_active"],
            revoked_reason="Deactivated at the source (certificate inactive).",
            attributes={"slot": f"cert_{n}"},
        )
