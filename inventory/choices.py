from django.db import models


class Environment(models.TextChoices):
    PROD = "prod", "Production"
    STAGING = "staging", "Staging"
    DEV = "dev", "Development"


class ToolKind(models.TextChoices):
    ASSISTANT = "assistant", "Assistant"
    AGENT = "agent", "Autonomous agent"
    CODING_ASSISTANT = "coding_assistant", "Coding assistant"
    SUPPORT_BOT = "support_bot", "Support bot"
    INCIDENT_ROUTER = "incident_router", "Incident router"
    MCP_SERVER = "mcp_server", "MCP server"
    OTHER = "other", "Other"


class DataClassification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class ToolStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PILOT = "pilot", "Pilot"
    RETIRED = "retired", "Retired"


class IdentityKind(models.TextChoices):
    SERVICE_ACCOUNT = "service_account", "Service account"
    API_KEY = "api_key", "API key"
    OAUTH_CLIENT = "oauth_client", "OAuth client"
    DELEGATED_TOKEN = "delegated_token", "Delegated token"
    WORKLOAD_IDENTITY = "workload_identity", "Workload identity"


class IdentityStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"
    RETIRED = "retired", "Retired"


class CredentialKind(models.TextChoices):
    API_KEY = "api_key", "API key"
    CLIENT_SECRET = "client_secret", "Client secret"
    ACCESS_TOKEN = "access_token", "Access token"
    REFRESH_TOKEN = "refresh_token", "Refresh token"
    CERTIFICATE = "certificate", "Certificate"
    SSH_KEY = "ssh_key", "SSH key"
    PASSWORD = "password", "Password"


class CredentialStorage(models.TextChoices):
    VAULT = "vault", "Secrets vault"
    CLOUD_SECRET_MANAGER = "secret_manager", "Cloud secret manager"
    ENV = "env", "Environment variable"
    CI_SECRET = "ci_secret", "CI secret store"
    CONNECTOR_CONFIG = "connector_config", "Connector configuration"
    PROMPT = "prompt", "Prompt or system message"
    REPOSITORY = "repository", "Source repository"
    UNKNOWN = "unknown", "Unknown"


class ScopeRisk(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


class GrantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
