"""
"Voucher expiring in N days": a code remembers which notice it got (N days before expiry), and the daily
notice reads published, unused codes by expiry through a partial index. Codes already announced under the
fixed 3-day notice are marked as having had the 3-day notice, so none is announced again.
"""

from django.db import migrations, models


def mark_announced(apps, schema_editor):
    Code = apps.get_model("campaigns", "Code")
    Code.objects.filter(expiry_notified_at__isnull=False, expiry_notice_days__isnull=True).update(expiry_notice_days=3)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0014_landing_images"),
    ]

    operations = [
        migrations.AddField(
            model_name="code",
            name="expiry_notice_days",
            field=models.PositiveSmallIntegerField(
                blank=True, help_text="The N of the last voucher.expiring notice (N days before expiry)", null=True
            ),
        ),
        migrations.AddIndex(
            model_name="code",
            index=models.Index(
                condition=models.Q(("customer__isnull", False), ("is_active", True), ("uses", 0)),
                fields=["expires_at"],
                name="promo_code_expiring_idx",
            ),
        ),
        migrations.RunPython(mark_announced, migrations.RunPython.noop, elidable=True),
    ]
