from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "apps.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty"

    def ready(self) -> None:
        from . import (
            fields,  # noqa: F401  (registers this app's fields in the condition catalog)
            receivers,
        )

        receivers.connect()
