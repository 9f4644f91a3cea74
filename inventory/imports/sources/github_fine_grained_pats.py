"""GitHub fine-grained personal access tokens an organization approved (`GET /orgs/{org}/personal-access-tokens`).

Field names are GitHub's. Each token acts as the person who made it (`owner.login`), so it is a delegated token
owned by that person. `permissions` are what the org granted: observed facts kept on the provenance, never a grant
that authorizes. A token with `token_expires_at` null never expires: a finding.
"""

from inventory.choices import CredentialKind, IdentityKind

from .records import IdentityRecord, Parsed, Problems, add_key, flag, identifier, listed_rows, moment, obj, text

KIND = "github-fine-grained-pats"
PROVIDER = "github"
DESCRIPTION = (
    "JSON array from `gh api --paginate /orgs/ORG/personal-access-tokens` (fine-grained tokens with access to the "
    "organization). Each token becomes an identity `pat:<token_id>` owned by `owner.login`, with one credential."
)


def parse(raw: bytes, *, account: str = "") -> Parsed:
    parsed, errors = Parsed(), Problems()
    for row in listed_rows(raw, errors):
        token_id = row.get("token_id", identifier)
        token_name = row.get("token_name", text, max_length=200)
        owner = row.get("owner", obj)
        login = None
        if isinstance(owner, dict):
            try:
                login = text(owner.get("login"), max_length=150)
            except Exception:
                row.fail("owner.login", "Must be the token owner's GitHub login.")
        permissions = row.get("permissions", obj, required=False, default={})
        selection = row.get("repository_selection", text, required=False, default="")
        granted = row.get("access_granted_at", moment, nullable=False)
        expired = row.get("token_expired", flag, required=False, default=False)
        expires = row.get("token_expires_at", moment, required=False)
        last_used = row.get("token_last_used_at", moment, required=False)
        if not row.ok:
            continue
        external_id = f"pat:{token_id}"
        identity = IdentityRecord(
            external_id=external_id, label=f"{token_name} ({login})", kind=IdentityKind.DELEGATED_TOKEN,
            where=row.where(), last_used_at=last_used, owner_hint=login or "", match={"name": token_name},
            attributes={"permissions": permissions, "repository_selection": selection, "token_expired": expired},
        )  # fmt: skip
        add_key(parsed, identity, suffix="token", kind=CredentialKind.ACCESS_TOKEN, created_at=granted,
                expires_at=expires, last_used_at=last_used, attributes={"never_expires": expires is None})  # fmt: skip
    errors.raise_if_any()
    return parsed
