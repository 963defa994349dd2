"""The global kill switch moves down to apps.platform (GlobalKillSwitch): its current state is copied first."""

from django.db import migrations


def copy_state(apps, schema_editor):
    settings_model = apps.get_model("campaigns", "PromotionSettings")
    switch_model = apps.get_model("platform", "GlobalKillSwitch")
    current = settings_model.objects.order_by("pk").first()
    switch = switch_model.objects.order_by("pk").first() or switch_model.objects.create()
    if current is not None and current.kill_switch:
        switch.is_on = True
        switch.reason = current.kill_switch_reason
        switch.changed_at = current.kill_switch_at
        switch.changed_by_id = current.kill_switch_by_id
        switch.save()


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0004_promotion_settings_row'),
        ('platform', '0004_global_kill_switch'),
    ]

    operations = [
        migrations.RunPython(copy_state, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='promotionsettings',
            name='kill_switch',
        ),
        migrations.RemoveField(
            model_name='promotionsettings',
            name='kill_switch_at',
        ),
        migrations.RemoveField(
            model_name='promotionsettings',
            name='kill_switch_by',
        ),
        migrations.RemoveField(
            model_name='promotionsettings',
            name='kill_switch_reason',
        ),
    ]
