from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .admin import audit_remaining_admins
        from .api import schema  # noqa: F401  (registers OpenAPI extensions)
        from .detection import detectors  # noqa: F401  (registers the inventory's detectors)

        audit_remaining_admins()
