from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _roles_refresh(sender: AppConfig, **kwargs: Any) -> None:
    """After a migrate (or a test flush), once every app has its permissions: roles gain new matches."""
    if sender.name != list(apps.get_app_configs())[-1].name:
        return
    from django.contrib.auth.models import Group, Permission

    from .roles import roles_apply

    roles_apply(group_model=Group, permission_model=Permission)


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

        post_migrate.connect(_roles_refresh, dispatch_uid="platform-roles-refresh")
