"""The one PromotionSettings row (global stacking settings and the kill switch) exists from the start."""

from django.db import migrations


def create_row(apps, schema_editor):
    settings = apps.get_model("campaigns", "PromotionSettings")
    if not settings.objects.exists():
        settings.objects.create()


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0003_code_expiry_notice")]

    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
