"""The source kinds this portal reads, by the name the API and the command take."""

from types import ModuleType

from . import (
    anthropic_api_keys,
    aws_credential_report,
    entra_service_principals,
    gcp_service_account_keys,
    github_app_installations,
    github_fine_grained_pats,
    kubernetes_service_accounts,
    okta_api_tokens,
    okta_apps,
    openai_admin_keys,
)  # fmt: skip

KINDS: dict[str, ModuleType] = {
    module.KIND: module
    for module in (
        aws_credential_report, gcp_service_account_keys, github_fine_grained_pats, github_app_installations,
        okta_apps, okta_api_tokens, entra_service_principals, kubernetes_service_accounts, openai_admin_keys,
        anthropic_api_keys,
    )
}  # fmt: skip
