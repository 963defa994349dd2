from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"
    verbose_name = "Store connectors"

    def ready(self) -> None:
        from .consumer import connect

        connect()
