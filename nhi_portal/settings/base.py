"""Settings shared by every environment; everything that varies comes from the environment."""

import ipaddress
import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

SECRET_KEY = env_str("SECRET_KEY", "insecure-dev-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # First: its ready() sets the project's error messages before any other app's ready() defines a form.
    "nhi_portal.apps.PortalConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",
    "csp",
    "inventory",
    "approvals",
    "operations",
]

MIDDLEWARE = [
    # Outermost: the request id, log context, request log line and HTTP metrics cover every answer.
    "operations.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "nhi_portal.middleware.SitePolicyCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "nhi_portal.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as axes requires: it turns a sign-in flagged as locked out into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "nhi_portal.urls"
WSGI_APPLICATION = "nhi_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "nhi_portal.context_processors.roles",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'nhi_portal.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and immediate transactions let the web process, the worker and beat share one file.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compilation costs more than it saves on the short queries of a web request (measured: 163 ms of a 198 ms
    # count query was compilation).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
    if env_bool("DB_PREPARED_STATEMENTS", True):
        # Planning a statement cost more than running it on the hot paths (0.76 ms against 0.19 ms for the
        # authorization lookup): with parameters bound on the server, psycopg prepares a statement on its fifth use
        # in a connection and PostgreSQL reuses the plan. Turn off behind a transaction-mode pooler that cannot
        # keep prepared statements (PgBouncer before 1.21 without max_prepared_statements).
        DATABASES["default"]["OPTIONS"] |= {"server_side_binding": True, "prepare_threshold": 5}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The local-memory default keeps `make run` free of servers; with several web processes, point CACHE_URL at Redis so
# that the count of failed token authentications is one count, not one per process.
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("CACHE_URL must be a Redis URL (redis://, rediss:// or unix://).")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# How many reverse proxies in front of the portal append to X-Forwarded-For. With 0 the peer address is the client;
# more entries than proxies are never believed, since the client writes the rest.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out username + address before the password is checked; it authenticates nobody itself.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
# The pair, not either alone: by address alone one attacker behind a shared NAT or proxy locks everyone there out; by
# username alone anyone can lock any user out from anywhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "nhi_portal.throttles.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inventory:dashboard"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "nhi_portal.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["nhi_portal.permissions.IsPortalUser"],
    "DEFAULT_FILTER_BACKENDS": [
        "nhi_portal.filters.StrictFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "nhi_portal.pagination.PortalPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "nhi_portal.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "nhi_portal.exceptions.portal_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "nhi_portal.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # No throttle for every endpoint: hot machine endpoints name their own (nhi_portal/throttles.py).
    "DEFAULT_THROTTLE_RATES": {
        # Per gateway account and per web process: 1,000/s, above what one worker answers (about 500/s on 2 cores),
        # so a busy gateway is never slowed; lower it where many gateways share a fleet, so one cannot starve them.
        "authorize": env_rate("AUTHORIZE_RATE", "60000/min"),
        # Failed `Authorization: Token` checks per client address, across processes through the cache.
        "token_failure": env_rate("API_TOKEN_FAILURE_RATE", "30/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

KNOX_TOKEN_MODEL = "knox.AuthToken"
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("API_TOKEN_TTL_DAYS", 30)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "NHI Portal API",
    "DESCRIPTION": "Inventory, approvals and authorization for the non-human identities AI tools act through.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema documents the open-source contract; the data behind it stays behind sign-in.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    # No badge from the public validator: it would send the schema's URL off-site, and the policy refuses the image.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several answers carry a `reason`; the authorization decision's reason codes are the ones gateways branch on.
    "ENUM_NAME_OVERRIDES": {
        "AuthorizeReasonEnum": "approvals.authorization.REASONS",
        "AlertDeliveryStatusEnum": "inventory.models.alerts.AlertDelivery.Status",  # issue 18
    },
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Installed into django-celery-beat's tables on start; editable in the admin afterwards.
CELERY_BEAT_SCHEDULE = {
    "expire-due-grants": {"task": "approvals.tasks.expire_due_grants", "schedule": 300.0},
    "expire-stale-requests": {"task": "approvals.tasks.expire_stale_requests", "schedule": 3600.0},
    "remind-expiring-grants": {"task": "approvals.tasks.remind_expiring_grants", "schedule": 3600.0},
    "seal-audit-trail": {"task": "inventory.tasks.seal_audit_trail", "schedule": 60.0},
    # Issue 17, audit at volume: verify what was sealed since the checkpoint, a full re-verification nightly, and the
    # SIEM push (a no-op unless SIEM_PUSH_URL is set).
    "verify-audit-incremental": {"task": "inventory.tasks.verify_audit_incremental", "schedule": 300.0},
    "verify-audit-full": {"task": "inventory.tasks.verify_audit_full", "schedule": crontab(hour=3, minute=30)},
    "push-siem-export": {"task": "inventory.tasks.push_siem_export", "schedule": 30.0},
    "archive-audit-months": {"task": "inventory.tasks.archive_audit_months", "schedule": crontab(hour=4, minute=30)},
    "roll-up-usage": {"task": "inventory.tasks.roll_up_usage", "schedule": 60.0},
    "daily-detection-scan": {"task": "inventory.tasks.scheduled_scan", "schedule": crontab(hour=2, minute=30)},
    # Issue 18: writes queue targeted runs themselves; this drains what a lost task (broker restart) left waiting.
    "drain-detection-changes": {"task": "inventory.tasks.run_targeted_detection", "schedule": 300.0},
    "delete-expired-tokens": {"task": "approvals.tasks.delete_expired_tokens", "schedule": crontab(hour=4, minute=0)},
    "daily-posture-snapshot": {"task": "inventory.tasks.take_posture_snapshot", "schedule": crontab(hour=5, minute=0)},
    # Issue 14: live discovery pulls; queues one pull per account in SOURCE_PULLS, nothing when none is configured.
    "pull-discovery-sources": {
        "task": "inventory.tasks.pull_discovery_sources",
        "schedule": float(env_int("SOURCE_PULL_INTERVAL_SECONDS", 6 * 3600)),
    },
}
# Detector thresholds in days; any key left out keeps the detector's default.
NHI_DETECTION_THRESHOLDS = {
    key[len("NHI_THRESHOLD_") :].lower(): int(value)
    for key, value in os.environ.items()
    if key.startswith("NHI_THRESHOLD_") and value.isdigit()
}
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")

# Event-driven detection and alerting (issue 18; inventory.changes, inventory.detection.alerts).
# Seconds a targeted detection run waits after the first write of a burst, so the burst is one run.
DETECTION_DEBOUNCE_SECONDS = env_int("DETECTION_DEBOUNCE_SECONDS", 2)
# A new or reopened finding at or above this severity (low, medium, high, critical) is alerted.
ALERT_MIN_SEVERITY = env_str("ALERT_MIN_SEVERITY", "high")
ALERT_WEBHOOK_URLS = env_list("ALERT_WEBHOOK_URLS")
# With a secret, each webhook body is signed: X-NHI-Signature: sha256=<hex HMAC-SHA256 of the body>.
ALERT_WEBHOOK_SECRET = env_str("ALERT_WEBHOOK_SECRET", "")
ALERT_WEBHOOK_TIMEOUT = env_int("ALERT_WEBHOOK_TIMEOUT", 5)
# Attempts per delivery, the first retry after ALERT_RETRY_BACKOFF_SECONDS, doubling each time.
ALERT_MAX_ATTEMPTS = env_int("ALERT_MAX_ATTEMPTS", 5)
ALERT_RETRY_BACKOFF_SECONDS = env_int("ALERT_RETRY_BACKOFF_SECONDS", 30)
# More findings than this opening in one run are sent as one digest per recipient and per webhook.
ALERT_DIGEST_AFTER = env_int("ALERT_DIGEST_AFTER", 5)
# Containment at the provider (inventory.detection.provider_disable): a dry run unless set.
CONTAINMENT_PROVIDER_DISABLE = env_bool("CONTAINMENT_PROVIDER_DISABLE", False)
CONTAINMENT_AWS_REGION = env_str("CONTAINMENT_AWS_REGION", "us-east-1")
CONTAINMENT_AWS_ENDPOINT_URL = env_str("CONTAINMENT_AWS_ENDPOINT_URL", "")  # credentials: boto3's usual environment
CONTAINMENT_GITHUB_API_URL = env_str("CONTAINMENT_GITHUB_API_URL", "https://api.github.com")
CONTAINMENT_GITHUB_TOKEN = env_str("CONTAINMENT_GITHUB_TOKEN", "")

# ---- Discovery live pulls (issue 14; inventory/imports/sources/pulls/) ---------------------------------------------
# Providers read over their own APIs on beat's schedule (`pull-discovery-sources`, every SOURCE_PULL_INTERVAL_SECONDS)
# and applied through the same sync as file imports. Off unless SOURCE_PULLS names accounts: a JSON object, one entry
# per account, e.g.
#   {"aws-prod": {"kind": "aws-credential-report", "account": "123456789012", "profile": "audit"},
#    "gh-acme": {"kind": "github-fine-grained-pats", "org": "acme", "token_env": "GITHUB_ACME_TOKEN"}}
# Options: kind; account (label; GitHub: the org); full (default true: what the provider no longer lists is gone);
# AWS: profile, region, endpoint_url; GitHub: org, token_env, api_url. No credential is ever configured here or stored
# in the database: AWS uses boto3's standard chain, GitHub reads its token from the variable token_env names.
try:
    SOURCE_PULLS = json.loads(env_str("SOURCE_PULLS", "") or "{}")
except json.JSONDecodeError as error:
    raise ImproperlyConfigured(f"SOURCE_PULLS is not JSON: {error.msg} at column {error.colno}.") from None
# The security user pull runs are recorded under (required for pulls to run).
SOURCE_PULL_ACTOR = env_str("SOURCE_PULL_ACTOR", "")
# Seconds per provider call, and the longest a pull waits for AWS to generate its credential report.
SOURCE_PULL_TIMEOUT_SECONDS = env_int("SOURCE_PULL_TIMEOUT_SECONDS", 30)

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "nhi-portal@localhost")
# Seconds per SMTP socket operation: a hung mail server fails the send (which the mail task retries) instead of
# holding a worker until the task's time limit.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)

# Fingerprints are keyed so that a leaked database does not double as a lookup table for secrets.
CREDENTIAL_FINGERPRINT_KEY = env_str("CREDENTIAL_FINGERPRINT_KEY", "nhi-portal-fingerprint-v1")

# Key of the audit chain's HMAC. Keep it outside the database (and its backups) so the chain proves something.
AUDIT_SEAL_KEY = env_str("AUDIT_SEAL_KEY", "nhi-portal-audit-seal-dev-key")
# Retired seal keys, comma-separated: batches record which key sealed them, so these keep older batches verifiable.
AUDIT_SEAL_OLD_KEYS = env_list("AUDIT_SEAL_OLD_KEYS")
# Write-once log outside the database that every sealed batch's digest is appended to (see inventory/audit/anchor.py).
AUDIT_ANCHOR_PATH = env_str("AUDIT_ANCHOR_PATH", str(VAR_DIR / "audit-anchor.jsonl"))
# SIEM push sink (inventory/audit/siem.py), off when empty: syslog+tcp://host:port, syslog+tls://host:port (RFC 5424,
# octet-counted) or https://... (NDJSON POSTs, signed with SIEM_PUSH_SECRET when set). See the README's production part.
SIEM_PUSH_URL = env_str("SIEM_PUSH_URL", "")
SIEM_PUSH_SECRET = env_str("SIEM_PUSH_SECRET", "")
SIEM_PUSH_CA_FILE = env_str("SIEM_PUSH_CA_FILE", "")
SIEM_PUSH_BATCH = env_int("SIEM_PUSH_BATCH", 1000)
SIEM_PUSH_TIMEOUT_SECONDS = env_int("SIEM_PUSH_TIMEOUT_SECONDS", 10)
# Where the retention job puts archived months of the audit trail (inventory/audit/retention.py): a folder, or with
# AUDIT_ARCHIVE_BUCKET an S3-compatible bucket through django-storages (credentials from the usual AWS_* variables).
# Months are archived once they closed this many months ago (the archive is taken while the rows are still here).
AUDIT_ARCHIVE_AFTER_MONTHS = env_int("AUDIT_ARCHIVE_AFTER_MONTHS", 1)
# PostgreSQL: then drop the access events' partitions whose rows are all archived (inventory/audit/partitions.py).
AUDIT_ARCHIVE_DROP = env_bool("AUDIT_ARCHIVE_DROP", True)
AUDIT_ARCHIVE_BUCKET = env_str("AUDIT_ARCHIVE_BUCKET", "")
if AUDIT_ARCHIVE_BUCKET:
    AUDIT_ARCHIVE_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AUDIT_ARCHIVE_BUCKET,
            "endpoint_url": env_str("AUDIT_ARCHIVE_ENDPOINT_URL", "") or None,
            "location": env_str("AUDIT_ARCHIVE_PREFIX", ""),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    AUDIT_ARCHIVE_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env_str("AUDIT_ARCHIVE_PATH", str(VAR_DIR / "audit-archive"))},
    }

# Largest accepted bulk-import document; above it the request is refused before parsing.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 64 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = IMPORT_MAX_BYTES

# No inline script, inline event handler or inline style anywhere in templates/ (tests/test_hardening_csp.py scans
# them), so neither script-src nor style-src needs 'unsafe-inline': htmx is told not to insert its own indicator
# <style> and not to eval (templates/base.html), and its indicator rules live in static/css/portal.css. The API docs
# pages (Swagger UI, Redoc) get a relaxed policy of their own in nhi_portal/urls.py.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# Structured logs through structlog (operations/logs.py): LOG_FORMAT=json (production's default) writes one JSON object
# a line for the SIEM, with request id, user and route; "console" writes the same fields readably.
LOG_FORMAT = env_str("LOG_FORMAT", "console")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or console.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_error_without_traceback": {"()": "nhi_portal.logging_filters.ClientErrorWithoutTraceback"}},
    "formatters": {"structured": {"()": "operations.logs.formatter", "json": LOG_FORMAT == "json"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    # An expected 403 or 404 keeps its warning line and loses the traceback of the PermissionDenied or Http404.
    "loggers": {
        "django.request": {"filters": ["client_error_without_traceback"]},
        # Its debug lines hold whole URLs, query strings included (the OIDC client's calls go through it).
        "urllib3": {"level": "WARNING"},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Operations (operations/): health, metrics, readiness thresholds. See the README's production section.
# /metrics and /readyz's details: a scraper presents `Authorization: Bearer <METRICS_TOKEN>`, or scrapes from one of
# METRICS_ALLOWED_NETWORKS (comma-separated CIDRs, client address as TRUSTED_PROXY_COUNT reads it); security users too.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS")
try:
    [ipaddress.ip_network(spec, strict=False) for spec in METRICS_ALLOWED_NETWORKS]
except ValueError as error:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {error}") from None
# /readyz answers 503 past these; 0 turns a check off. Beat writes run times back every 3 minutes; the sealing lag
# limit defaults to the bound verify uses (grace period plus two seal intervals); the scan runs daily.
READINESS_BEAT_MAX_AGE_SECONDS = env_int("READINESS_BEAT_MAX_AGE_SECONDS", 600)
READINESS_SEALING_LAG_MAX_SECONDS = env_int("READINESS_SEALING_LAG_MAX_SECONDS", -1)
if READINESS_SEALING_LAG_MAX_SECONDS < 0:
    READINESS_SEALING_LAG_MAX_SECONDS = None
READINESS_SCAN_MAX_AGE_HOURS = env_int("READINESS_SCAN_MAX_AGE_HOURS", 26)
READINESS_CHECK_TIMEOUT_SECONDS = env_int("READINESS_CHECK_TIMEOUT_SECONDS", 3)
# The SIEM push sink's lag (only when SIEM_PUSH_URL is set); 0 turns the check off.
READINESS_SIEM_LAG_MAX_SECONDS = env_int("READINESS_SIEM_LAG_MAX_SECONDS", 900)
# The worker keeps Django's logging (structured lines with the task's correlation id) instead of installing its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Single sign-on with OpenID Connect (operations/sso_backend.py, mozilla-django-oidc). On when OIDC_RP_CLIENT_ID is set.
# The provider's endpoints are in its discovery document (ISSUER/.well-known/openid-configuration).
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET", "")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT", "")
# end_session_endpoint: sign-out also ends the provider's session; empty for a provider without one.
OIDC_OP_LOGOUT_ENDPOINT = env_str("OIDC_OP_LOGOUT_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = True  # the hint RP-initiated logout sends back to the provider
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10)
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# Which provider groups grant which portal role; a user in none of them is an owner.
OIDC_ROLE_GROUPS = {
    "security": env_list("OIDC_SECURITY_GROUPS", "security"),
    "manager": env_list("OIDC_MANAGER_GROUPS", "manager"),
    "gateway": env_list("OIDC_GATEWAY_GROUPS", "gateway"),
}
# Link a first SSO sign-in to an existing local user of the same name (when moving a deployment to SSO).
OIDC_LINK_EXISTING_USERS = env_bool("OIDC_LINK_EXISTING_USERS", False)
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
# Off: no password sign-in anywhere (sign-in page, admin); API tokens still work.
PASSWORD_LOGIN_ENABLED = env_bool("PASSWORD_LOGIN_ENABLED", True)
if OIDC_RP_CLIENT_ID:
    _oidc_needs = ("ISSUER", "AUTHORIZATION_ENDPOINT", "TOKEN_ENDPOINT", "USER_ENDPOINT", "JWKS_ENDPOINT")
    if _missing := [f"OIDC_OP_{name}" for name in _oidc_needs if not globals()[f"OIDC_OP_{name}"]]:
        raise ImproperlyConfigured(f"Single sign-on needs {', '.join(_missing)}.")
    AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "operations.sso_backend.PortalOIDCBackend"]
if OIDC_OP_LOGOUT_ENDPOINT:
    # Sign-out is a form posted to the portal that redirects to the provider, and browsers hold redirects after a form
    # to form-action: the provider's origin must be in it.
    _end_session = urlsplit(OIDC_OP_LOGOUT_ENDPOINT)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(f"{_end_session.scheme}://{_end_session.netloc}")
if not PASSWORD_LOGIN_ENABLED:
    AUTHENTICATION_BACKENDS = [
        "operations.sso_backend.PermissionsOnlyBackend" if backend.endswith(".ModelBackend") else backend
        for backend in AUTHENTICATION_BACKENDS
    ]
