"""Test settings: the database and broker named by the environment, fast hashing, no real mail."""

from .base import *  # noqa: F403
from .env import env_str

DEBUG = False
DEMO_MODE = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "memory://")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Rate limits keep their state across tests (per-process buckets, the cache), so a long suite would trip them by
# accident; tests/test_hardening_throttles.py switches them on with the `settings` fixture and resets that state.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"authorize": None, "token_failure": None}}  # noqa: F405
