"""Production settings: secrets must come from the environment, HTTPS everywhere."""

from .base import *  # noqa: F403
from .env import env_bool, env_int, env_str

SECRET_KEY = env_str("SECRET_KEY")
# Separate keys: rotating SECRET_KEY must not change every credential fingerprint or break the audit chain.
CREDENTIAL_FINGERPRINT_KEY = env_str("CREDENTIAL_FINGERPRINT_KEY")
AUDIT_SEAL_KEY = env_str("AUDIT_SEAL_KEY")
# Outside the database and its backups, or the anchor proves nothing: no default.
AUDIT_ANCHOR_PATH = env_str("AUDIT_ANCHOR_PATH")
DEBUG = False

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True

# Probes and scrapers inside the network call over plain HTTP, without the proxy's X-Forwarded-Proto: answer them
# rather than redirect them to HTTPS (operations/urls.py).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# One JSON object a line for the SIEM, unless LOG_FORMAT=console.
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING["formatters"]["structured"]["json"] = LOG_FORMAT == "json"  # noqa: F405
