from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class AutomationsConfig(AppConfig):
    name = "apps.automations"
    label = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        # Every app declares the fields, triggers and actions it offers in its own `automation.py`,
        # the way apps declare their models in `admin.py`; importing them registers them.
        autodiscover_modules("automation")
        from . import checks  # noqa: F401  (registers the start-up checks)
        from .signals import receivers_connect

        receivers_connect()
