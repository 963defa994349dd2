from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "apps.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from . import (
            fields,  # noqa: F401  (registers this app's fields in the condition catalog)
            receivers,
        )
        from .fraud import consumer
        from .fraud import fields as fraud_fields  # noqa: F401  (velocity and identity fields)

        consumer.connect()
        receivers.connect()
