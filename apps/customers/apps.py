from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "apps.customers"
    label = "customers"
    verbose_name = "Customers & orders"

    def ready(self) -> None:
        from . import checks, fields  # noqa: F401  (start-up checks; this app's fields in the condition catalog)
