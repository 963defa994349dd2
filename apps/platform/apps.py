from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save


def _roles_refresh(sender: AppConfig, **kwargs: Any) -> None:
    """After a migrate (or a test flush), once every app has its permissions: roles gain new matches."""
    if sender.name != list(apps.get_app_configs())[-1].name:
        return
    from django.contrib.auth.models import Group, Permission

    from .audit import audit_muted
    from .roles import roles_apply

    with audit_muted():
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

        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from .audit import membership_changed

        user_model = get_user_model()
        for through in (user_model.groups.through, user_model.user_permissions.through, Group.permissions.through):
            m2m_changed.connect(membership_changed, sender=through, dispatch_uid=f"platform-audit-{through.__name__}")

        # Cached API tokens and permissions (authentication.py) are read again after any change to them.
        from django.contrib.auth.models import Permission

        from .authentication import auth_cache_invalidate
        from .models import ApiToken

        for model in (ApiToken, user_model, Group, Permission):
            for signal in (post_save, post_delete):
                signal.connect(
                    auth_cache_invalidate, sender=model, dispatch_uid=f"platform-auth-cache-{model.__name__}"
                )
        for through in (user_model.groups.through, user_model.user_permissions.through, Group.permissions.through):
            m2m_changed.connect(
                auth_cache_invalidate, sender=through, dispatch_uid=f"platform-auth-cache-{through.__name__}"
            )
