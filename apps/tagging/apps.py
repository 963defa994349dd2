from django.apps import AppConfig


class TaggingConfig(AppConfig):
    name = "apps.tagging"
    label = "tagging"
    verbose_name = "Tags"

    def ready(self) -> None:
        from . import fields  # noqa: F401  (registers this app's fields in the condition catalog)
