"""Which provider accounts the portal pulls from, read from settings (`SOURCE_PULLS`), never from the database.

`SOURCE_PULLS` is a JSON object, one entry per account, named by the entry's key:

    {"aws-prod": {"kind": "aws-credential-report", "account": "123456789012", "profile": "audit"},
     "github-acme-pats": {"kind": "github-fine-grained-pats", "org": "acme", "token_env": "GITHUB_ACME_TOKEN"}}

No entry holds a secret. AWS credentials come from boto3's standard chain (environment, shared config `profile`,
container or instance role); a GitHub token is read, at pull time, from the environment variable `token_env` names.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

AWS_KINDS = ("aws-credential-report",)
GITHUB_KINDS = ("github-fine-grained-pats", "github-app-installations")
_OPTIONS = {
    "aws-credential-report": {"kind", "account", "full", "profile", "region", "endpoint_url"},
    "github-fine-grained-pats": {"kind", "account", "full", "org", "token_env", "api_url"},
    "github-app-installations": {"kind", "account", "full", "org", "token_env", "api_url"},
}
# Option names that would mean someone put a credential into the configuration itself.
_SECRET_NAMES = ("token", "secret", "password", "aws_access_key_id", "aws_secret_access_key", "session_token")


@dataclass(frozen=True)
class PullConfig:
    name: str
    kind: str
    account: str
    full: bool = True
    options: dict[str, str] = field(default_factory=dict)


def _entry(name: str, entry) -> PullConfig:
    where = f"SOURCE_PULLS[{name!r}]"
    if not isinstance(entry, dict):
        raise ImproperlyConfigured(f"{where} must be a JSON object.")
    kind = entry.get("kind")
    if kind not in _OPTIONS:
        raise ImproperlyConfigured(f"{where}: kind must be one of {', '.join(_OPTIONS)}.")
    secret = [key for key in entry if key.lower() in _SECRET_NAMES]
    if secret:
        raise ImproperlyConfigured(
            f"{where}: {', '.join(secret)} would put a credential in the configuration; AWS uses its standard "
            "credential chain (profile), GitHub names the environment variable holding its token (token_env)."
        )
    unknown = sorted(set(entry) - _OPTIONS[kind])
    if unknown:
        raise ImproperlyConfigured(f"{where}: unknown option(s) {', '.join(unknown)} for {kind}.")
    if not all(isinstance(value, str) for key, value in entry.items() if key != "full"):
        raise ImproperlyConfigured(f"{where}: every option but full is a string.")
    if not isinstance(entry.get("full", True), bool):
        raise ImproperlyConfigured(f"{where}: full is true or false.")
    if kind in GITHUB_KINDS and not (entry.get("org") and entry.get("token_env")):
        raise ImproperlyConfigured(f"{where}: a GitHub pull needs org and token_env.")
    options = {key: value for key, value in entry.items() if key not in ("kind", "account", "full")}
    # GitHub's org is the account unless named otherwise, as containment (provider_disable) reads it.
    account = entry.get("account", entry.get("org", ""))
    return PullConfig(name=name, kind=kind, account=account, full=entry.get("full", True), options=options)


def pull_configs() -> dict[str, PullConfig]:
    """Every configured pull by name; none configured is the default (pulls are off)."""
    pulls = settings.SOURCE_PULLS
    if not isinstance(pulls, dict):
        raise ImproperlyConfigured("SOURCE_PULLS must be a JSON object of named pulls.")
    return {name: _entry(name, entry) for name, entry in pulls.items()}
