"""Kubernetes service accounts and their legacy token secrets (`kubectl get serviceaccounts,secrets -A -o json`).

Field names are Kubernetes'. Each ServiceAccount is a workload identity `system:serviceaccount:<ns>:<name>`. A Secret
of `type: kubernetes.io/service-account-token` is a long-lived token bound to the account its annotation
`kubernetes.io/service-account.name` names: a legacy token, a finding of its own. Its token is the one secret any
source carries: it is fingerprinted and dropped here, on arrival (fingerprint and last four, as the credential API
keeps). Secrets of any other type are skipped unread. The label `kubernetes.io/legacy-token-last-used` (a date) is
its last use; without it the use is unknown. `kubernetes.io/legacy-token-invalid-since` means the control plane
already invalidated it.
"""

import base64
import binascii

from inventory.choices import CredentialKind, IdentityKind
from inventory.fingerprints import digest_secret, validate_secret

from .records import (
    CredentialRecord,
    IdentityRecord,
    Invalid,
    Parsed,
    Problems,
    Row,
    load_json,
    moment,
    obj,
    text,
    top_list,
)

KIND = "kubernetes-service-accounts"
PROVIDER = "kubernetes"
DESCRIPTION = (
    "`kubectl get serviceaccounts,secrets -A -o json` (a List). Service accounts become workload identities "
    "(`system:serviceaccount:<ns>:<name>`); service-account-token secrets become credentials, kept as fingerprint "
    "and last four only; other secrets are skipped unread."
)
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_ANNOTATION = "kubernetes.io/service-account.name"
LAST_USED = "kubernetes.io/legacy-token-last-used"
INVALID_SINCE = "kubernetes.io/legacy-token-invalid-since"


def _day(value):
    """The tracking labels hold a date (YYYY-MM-DD)."""
    return moment(value + "T00:00:00Z" if isinstance(value, str) and len(value) == 10 else value, nullable=False)


def parse(raw: bytes, *, account: str = "") -> Parsed:
    entries, envelope = top_list(load_json(raw), "items")
    parsed, errors = Parsed(), Problems()
    tokens: list[tuple[Row, dict, str]] = []
    for i, data in enumerate(entries):
        row = Row(data, f"{envelope}[{i}]", errors)
        if not row.ok:
            continue
        kind = row.get("kind", text)
        if kind == "Secret" and row.data.get("type") != TOKEN_TYPE:
            continue  # another kind of secret: not ours to read
        meta = row.get("metadata", obj)
        if kind not in ("ServiceAccount", "Secret"):
            if kind is not None:
                row.fail("kind", "Must be ServiceAccount or Secret.")
            continue
        if not isinstance(meta, dict):
            continue
        m = Row(meta, f"{row.path}.metadata", errors)
        name = m.get("name", text, max_length=253)
        namespace = m.get("namespace", text, max_length=63)
        created = m.get("creationTimestamp", moment, required=False)
        if not m.ok:
            continue
        if kind == "ServiceAccount":
            external_id = f"system:serviceaccount:{namespace}:{name}"
            parsed.identities.append(
                IdentityRecord(
                    external_id=external_id,
                    label=f"{namespace}/{name}",
                    kind=IdentityKind.WORKLOAD_IDENTITY,
                    where=row.where(),
                    attributes={"namespace": namespace, "created": created.isoformat() if created else None},
                )
            )
        else:
            tokens.append((row, meta, f"{namespace}/{name}"))
    accounts = {record.external_id for record in parsed.identities}
    for row, meta, secret_name in tokens:
        _token(parsed, errors, row, meta, secret_name, accounts)
    errors.raise_if_any()
    return parsed


def _token(parsed: Parsed, errors: Problems, row: Row, meta: dict, secret_name: str, accounts: set[str]) -> None:
    namespace = meta["namespace"]
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    if not isinstance(annotations, dict) or not isinstance(labels, dict):
        row.fail("metadata", "annotations and labels must be JSON objects.")
        return
    account = annotations.get(SA_ANNOTATION)
    if not isinstance(account, str) or not account:
        row.fail(f"metadata.annotations.{SA_ANNOTATION}", "A service-account token must name its service account.")
        return
    identity = f"system:serviceaccount:{namespace}:{account}"
    if identity not in accounts:
        parsed.warnings.append(
            {**row.where(), "field": "metadata.annotations", "message": "Names a service account the file does not "
             "list; the token was skipped. Export serviceaccounts and secrets together."}
        )  # fmt: skip
        return
    digest = None
    data = row.data.get("data")
    token = data.get("token") if isinstance(data, dict) else None
    if token is not None:
        try:
            # The token is base64 in a Secret's data; decoded only to be fingerprinted, then dropped.
            secret = base64.b64decode(token, validate=True).decode("utf-8") if isinstance(token, str) else None
        except (binascii.Error, UnicodeDecodeError, ValueError):
            secret = None
        if secret is None or validate_secret(secret):
            row.fail("data.token", "Must be the base64 of a service-account token.")
            return
        digest = digest_secret(secret)
        del secret
    try:
        last_used = _day(labels[LAST_USED]) if LAST_USED in labels else None
        invalid_since = _day(labels[INVALID_SINCE]) if INVALID_SINCE in labels else None
        created = moment(meta.get("creationTimestamp"))
    except Invalid as exc:
        row.fail("metadata.labels", str(exc))
        return
    parsed.credentials.append(
        CredentialRecord(
            external_id=f"secret:{secret_name}",
            identity_external_id=identity,
            kind=CredentialKind.ACCESS_TOKEN,
            where=row.where(),
            created_at=created,
            last_used_at=last_used,
            last_use_known=last_used is not None,
            revoked=invalid_since is not None,
            revoked_reason="Invalidated by the control plane (legacy-token-invalid-since).",
            digest=digest,
            legacy_token=True,
        )
    )
