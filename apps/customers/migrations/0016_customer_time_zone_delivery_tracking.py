"""
Two changes of issue 14's messaging, in one migration:

1. What the e-mail provider's tracking webhook reports on a Delivery (provider_event, delivered_at, opened_at,
   complained_at) and an index on the provider's message id (the webhook finds its delivery by it).
2. Customer.time_zone (an IANA name; blank: the sending policy's default), moved out of `attributes.time_zone`,
where quiet hours read it before. A known name (any letter case) moves to the column in the database's
spelling and leaves `attributes`; an unknown one stays in `attributes` untouched (nothing is lost) and the
customer falls back to the default. Reversible: the column's values go back to `attributes.time_zone`.
"""

from django.db import migrations, models

import loyalty_site.lib.timezones

BATCH = 2000


def move_to_column(apps, schema_editor):
    from loyalty_site.lib.timezones import time_zone_canonical

    Customer = apps.get_model("customers", "Customer")
    # Only the customers holding the key (few); read in id order, written in batches.
    rows = Customer.objects.filter(attributes__has_key="time_zone").only("pk", "attributes").order_by("pk")
    changed = []
    for customer in rows.iterator(chunk_size=BATCH):
        attributes = dict(customer.attributes or {})
        name = time_zone_canonical(attributes.get("time_zone"))
        if name is None:
            continue
        attributes.pop("time_zone")
        customer.attributes, customer.time_zone = attributes, name
        changed.append(customer)
        if len(changed) >= BATCH:
            Customer.objects.bulk_update(changed, ["attributes", "time_zone"])
            changed = []
    Customer.objects.bulk_update(changed, ["attributes", "time_zone"])


def move_back(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    changed = []
    for customer in Customer.objects.exclude(time_zone="").only("pk", "attributes", "time_zone").iterator(BATCH):
        customer.attributes = {**(customer.attributes or {}), "time_zone": customer.time_zone}
        changed.append(customer)
        if len(changed) >= BATCH:
            Customer.objects.bulk_update(changed, ["attributes"])
            changed = []
    Customer.objects.bulk_update(changed, ["attributes"])


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0015_messaging_sending_policy"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="time_zone",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="IANA time zone, e.g. Europe/Paris (quiet hours of messages); blank: the sending "
                "policy's default",
                max_length=64,
                validators=[loyalty_site.lib.timezones.validate_time_zone],
            ),
        ),
        migrations.AlterField(
            model_name="sendingpolicy",
            name="default_time_zone",
            field=models.CharField(
                default="UTC", help_text="IANA zone for customers without a time zone of their own", max_length=64
            ),
        ),
        migrations.RunPython(move_to_column, move_back, elidable=True),
        migrations.AddField(
            model_name="delivery",
            name="complained_at",
            field=models.DateTimeField(blank=True, help_text="Marked as spam by the recipient", null=True),
        ),
        migrations.AddField(
            model_name="delivery",
            name="delivered_at",
            field=models.DateTimeField(blank=True, help_text="The provider delivered it", null=True),
        ),
        migrations.AddField(
            model_name="delivery",
            name="opened_at",
            field=models.DateTimeField(blank=True, help_text="First opened (the provider's tracking)", null=True),
        ),
        migrations.AddField(
            model_name="delivery",
            name="provider_event",
            field=models.CharField(blank=True, help_text="The provider's latest event", max_length=16),
        ),
        migrations.AddField(
            model_name="delivery",
            name="provider_event_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("provider_message_id", ""), _negated=True),
                fields=["provider_message_id"],
                name="delivery_provider_message_id",
            ),
        ),
    ]
