"""Containment at the provider (issue 18): where discovery knows where a contained credential lives, disable it there
too, so the key stops working everywhere, not only behind the portal's gateways.

- AWS access keys (from an IAM credential report): ListAccessKeys for the user, the key created when the report says,
  then UpdateAccessKey to Inactive (reversible in IAM, unlike a delete).
- GitHub fine-grained personal access tokens (from an org's token list): the org admin revoke,
  POST /orgs/{org}/personal-access-tokens/{id} {"action": "revoke"}.

A dry run unless `CONTAINMENT_PROVIDER_DISABLE` is set: the run says what it would have done and touches nothing.
Runs in a Celery task after containment commits (network calls never hold the containment's transaction), and every
outcome (dry run, disabled, failed, unsupported) is an audit entry on the credential.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

import requests
from django.conf import settings

from inventory.audit.record import audit_many
from inventory.models import Credential, SourceObject

DRY_RUN, DISABLED, FAILED, UNSUPPORTED = "dry_run", "disabled", "failed", "unsupported"


@dataclass(frozen=True)
class Outcome:
    credential: int
    provider: str
    action: str
    outcome: str
    detail: str = ""


def _aws_client():
    import boto3  # only a worker that disables keys needs it loaded

    options = {"region_name": settings.CONTAINMENT_AWS_REGION}
    if settings.CONTAINMENT_AWS_ENDPOINT_URL:
        options["endpoint_url"] = settings.CONTAINMENT_AWS_ENDPOINT_URL
    return boto3.client("iam", **options)


def _same_second(left: datetime, right: datetime) -> bool:
    return abs((left - right).total_seconds()) < 1


def _aws(source: SourceObject, credential: Credential, live: bool) -> Outcome:
    user = source.external_id.partition("#")[0].rsplit("/", 1)[-1]
    action = f"AWS UpdateAccessKey Inactive for user {user}, key created {credential.created_at:%Y-%m-%d %H:%M:%S}"
    if not live:
        return Outcome(credential.pk, "aws", action, DRY_RUN)
    iam = _aws_client()
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    matching = [k for k in keys if _same_second(k["CreateDate"], credential.created_at)]
    if len(matching) != 1:
        return Outcome(credential.pk, "aws", action, FAILED, f"{len(matching)} keys of {user} match its creation time")
    key_id = matching[0]["AccessKeyId"]
    iam.update_access_key(UserName=user, AccessKeyId=key_id, Status="Inactive")
    return Outcome(credential.pk, "aws", f"{action} ({key_id[:4]}…{key_id[-4:]})", DISABLED)


def _github(source: SourceObject, credential: Credential, live: bool) -> Outcome:
    token_id = source.external_id.partition("#")[0].removeprefix("pat:")
    org = source.account
    action = f"GitHub revoke of fine-grained token {token_id} in org {org or '(unknown)'}"
    if not live:
        return Outcome(credential.pk, "github", action, DRY_RUN)
    if not org or not token_id.isdigit():
        return Outcome(credential.pk, "github", action, FAILED, "the import did not say which org or token")
    url = f"{settings.CONTAINMENT_GITHUB_API_URL.rstrip('/')}/orgs/{org}/personal-access-tokens/{token_id}"
    headers = {"Accept": "application/vnd.github+json", "Authorization": f"Bearer {settings.CONTAINMENT_GITHUB_TOKEN}",
               "X-GitHub-Api-Version": "2022-11-28"}  # fmt: skip
    try:
        response = requests.post(url, json={"action": "revoke"}, headers=headers, timeout=10, allow_redirects=False)
    except requests.RequestException as error:
        return Outcome(credential.pk, "github", action, FAILED, type(error).__name__)
    if response.status_code not in (202, 204):
        return Outcome(credential.pk, "github", action, FAILED, f"HTTP {response.status_code}")
    return Outcome(credential.pk, "github", action, DISABLED)


def _handler(source: SourceObject):
    if source.provider == "aws" and source.attributes.get("slot", "").startswith("access_key_"):
        return _aws
    if source.provider == "github" and source.external_id.startswith("pat:"):
        return _github
    return None


def provider_disable(*, credential_ids: list[int], actor_label: str) -> list[Outcome]:
    """Disable these credentials at their providers (or say what would be done); one audit entry per outcome."""
    live = settings.CONTAINMENT_PROVIDER_DISABLE
    outcomes = []
    sources = SourceObject.objects.filter(credential_id__in=credential_ids, object_type="credential")
    for source in sources.select_related("credential").order_by("pk"):
        handler = _handler(source)
        if handler is None:
            outcomes.append(Outcome(source.credential_id, source.provider, "none known", UNSUPPORTED))
            continue
        try:
            outcomes.append(handler(source, source.credential, live))
        except Exception as error:  # the provider's answer is this credential's outcome, never the task's failure
            outcomes.append(Outcome(source.credential_id, source.provider, "disable", FAILED, type(error).__name__))
    for outcome in outcomes:
        audit_many(
            action="credential.provider_disable",
            object_type="inventory.credential",
            objects=[(outcome.credential, f"credential {outcome.credential}")],
            before=None,
            after=asdict(outcome),
            actor_label=actor_label,
        )
    return outcomes
