from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "apps.customers"
    label = "customers"
    verbose_name = "Customers & orders"

    def ready(self) -> None:
        from . import fields  # noqa: F401  (registers this app's fields in the condition catalog)
