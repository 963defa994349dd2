from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """
    The bottom app: API tokens, Idempotency-Key records, roles and the audit log. Every domain app needs
    them and none of the five can own them without breaking the one-way import direction, so they live
    here, below `customers`; this app imports no other app.
    """

    name = "apps.platform"
    label = "platform"
    verbose_name = "Access & audit"

    def ready(self) -> None:
        # Registers the OpenAPI description of the bearer-token authentication.
        from . import schema  # noqa: F401
