from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "apps.customers"
    label = "customers"
    verbose_name = "Customers & orders"

    def ready(self) -> None:
        # Registers the OpenAPI description of the bearer-token authentication.
        from loyalty_site.lib.api import schema  # noqa: F401
