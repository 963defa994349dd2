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
        from .landing import consumer as landing_consumer
        from .landing import fields as landing_fields  # noqa: F401  (form.fields.* of the form.submitted trigger)

        consumer.connect()
        landing_consumer.connect()
        receivers.connect()
