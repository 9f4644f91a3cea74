from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project package as an app, for what must happen once at startup. It has no models."""

    name = "nhi_portal"
    verbose_name = "NHI Portal"

    def ready(self):
        from . import error_messages

        error_messages.install()
