"""Create the role groups (analyst, marketer, support, integration, admin) with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from apps.platform.roles import roles_apply


def create_roles(apps, schema_editor):
    # Permissions are normally created after the last migration; the roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_apply(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("platform", "0002_tokens_scopes_capabilities_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0003_move_tokens_to_platform"),
        ("tagging", "0001_initial"),
        ("loyalty", "0004_rule_tiers"),
        ("campaigns", "0001_segments"),
        ("automations", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
