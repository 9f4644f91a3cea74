from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Running the portal in production: health, metrics, structured logs, single sign-on."""

    name = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import correlation  # noqa: F401  (connects the Celery signals that carry the correlation id)
