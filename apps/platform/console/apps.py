from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """Django's admin, with the console's site (`apps.platform.console.site.ConsoleSite`) as `admin.site`."""

    default_site = "apps.platform.console.site.ConsoleSite"
