"""The vocabulary the benchmark estate is drawn from: teams, tools, vendors, people, providers, resource patterns."""

from inventory import choices

DOMAINS = (
    "payments", "billing", "support", "incident", "search", "checkout", "fraud", "identity", "platform",
    "data", "mobile", "growth", "security", "sales", "marketing", "finance", "legal", "hr", "logistics",
    "catalog", "docs", "release", "observability", "ml", "analytics",
)  # fmt: skip
TEAM_SUFFIXES = ("Platform", "Engineering", "Operations", "Data", "Tooling", "Reliability")
TOOL_WORDS = {
    choices.ToolKind.ASSISTANT: "assistant",
    choices.ToolKind.AGENT: "agent",
    choices.ToolKind.CODING_ASSISTANT: "copilot",
    choices.ToolKind.SUPPORT_BOT: "support bot",
    choices.ToolKind.INCIDENT_ROUTER: "incident router",
    choices.ToolKind.MCP_SERVER: "MCP server",
    choices.ToolKind.OTHER: "helper",
}
TOOL_TASKS = (
    "triages incoming tickets", "drafts replies for review", "summarises incidents", "reviews pull requests",
    "answers questions from the wiki", "reconciles invoices", "routes pages to the on-call", "tags datasets",
    "opens and updates issues", "runs read-only SQL for analysts",
)  # fmt: skip
VENDORS = ("OpenAI", "Anthropic", "Google", "Microsoft", "GitHub", "Atlassian", "Zendesk", "In-house", "")
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena")
LAST_NAMES = ("Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jansen")

# Where identities live, with the resources their scopes reach; * marks personal, customer or secret data.
PROVIDERS = {
    "github": ("contents", "issues", "pull_requests", "actions", "*secrets", "org"),
    "aws": ("*s3", "*iam", "lambda", "*secretsmanager", "dynamodb", "cloudwatch"),
    "gcp": ("*bigquery", "storage", "*iam", "pubsub", "logging"),
    "azure": ("*keyvault", "blob", "devops", "monitor"),
    "atlassian": ("jira", "confluence", "bitbucket"),
    "slack": ("chat", "channels", "*users", "files"),
    "salesforce": ("*customer", "opportunity", "case"),
    "zendesk": ("*tickets", "macros", "*users"),
    "okta": ("*users", "groups", "apps"),
    "snowflake": ("*warehouse", "*pii_schema", "analytics"),
    "pagerduty": ("incidents", "schedules", "services"),
    "datadog": ("metrics", "logs", "monitors"),
    "google-workspace": ("*gmail", "drive", "calendar", "*directory"),
    "servicenow": ("incident", "change", "*hr_case"),
    "stripe": ("*charges", "*customers", "refunds", "payouts"),
    "openai": ("models", "files", "assistants"),
    "notion": ("pages", "databases"),
    "kubernetes": ("pods", "*secrets", "deployments", "configmaps"),
    "hubspot": ("*contacts", "deals"),
}
EXTERNAL_IDS = {
    "aws": "arn:aws:iam::{n:012d}:role/{name}",
    "gcp": "{name}@acme-{env}.iam.gserviceaccount.com",
    "github": "app/{n}",
    "okta": "0oa{n:014x}",
}
IDENTITY_ABBREVIATIONS = {
    choices.IdentityKind.SERVICE_ACCOUNT: "sa",
    choices.IdentityKind.API_KEY: "key",
    choices.IdentityKind.OAUTH_CLIENT: "oauth",
    choices.IdentityKind.DELEGATED_TOKEN: "delegated",
    choices.IdentityKind.WORKLOAD_IDENTITY: "workload",
}
CREDENTIAL_KINDS = {
    choices.IdentityKind.SERVICE_ACCOUNT: ("password", "ssh_key", "api_key", "certificate"),
    choices.IdentityKind.API_KEY: ("api_key",),
    choices.IdentityKind.OAUTH_CLIENT: ("client_secret", "client_secret", "client_secret", "refresh_token"),
    choices.IdentityKind.DELEGATED_TOKEN: ("access_token", "refresh_token"),
    choices.IdentityKind.WORKLOAD_IDENTITY: ("certificate", "access_token"),
}
RESOURCE_PATTERNS = ("repo:acme/{d}-*", "project:{D}", "bucket:acme-{d}-{env}", "channel:#{d}-alerts", "queue:{d}")

# Weighted choices: (value, weight).
