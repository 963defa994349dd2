# The tag half of the attribution finds a customer's last tag added before an order on the audit's own
# (customer_id, created_at DESC) index (few audit rows per customer); the partial copy of it that 0005 added made
# every audited tag write one index more (bulk tagging: about 0.15 s per 100,000 tags at 1M customers).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0005_message_orders_touch'),
    ]

    operations = [
        migrations.RunSQL(
            "DROP INDEX IF EXISTS reports_src_tagaudit_touch_idx",
            reverse_sql=(
                "CREATE INDEX IF NOT EXISTS reports_src_tagaudit_touch_idx ON tagging_tagaudit (customer_id, created_at)"
                " WHERE action = 'added'"
            ),
        ),
    ]
