"""
Account state guest / invited / registered / disabled (the old `activated` becomes `registered`), and the
preferred currency derived from the orders unless the integrator set it: a preferred currency stored so far
was given by the integrator (nothing derived it), so it is kept and marked so; the others are derived now.
"""

from django.db import migrations, models

# The same rule as services.preferred_currency_derive, set-based: most orders (not cancelled, not fully
# refunded) by count, ties broken by the currency of the most recent order.
DERIVE_SQL = """
UPDATE customers_customer SET preferred_currency = COALESCE((
    SELECT o.currency FROM customers_order AS o
    WHERE o.customer_id = customers_customer.id AND o.status NOT IN ('cancelled', 'refunded')
    GROUP BY o.currency ORDER BY COUNT(*) DESC, MAX(o.placed_at) DESC, MAX(o.id) DESC LIMIT 1
), '')
WHERE preferred_currency = '' AND orders_count > 0
"""


def forwards(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    Customer.objects.filter(state="activated").update(state="registered")
    Customer.objects.exclude(preferred_currency="").update(preferred_currency_set_by_integrator=True)
    schema_editor.execute(DERIVE_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0007_customer_status_signup"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="preferred_currency_set_by_integrator",
            field=models.BooleanField(
                default=False,
                db_default=False, help_text="True: the integrator set the preferred currency; orders do not change it."
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="preferred_currency",
            field=models.CharField(
                blank=True,
                help_text="ISO 4217. Derived from the orders (most orders by count, ties: the most recent order) unless set by the integrator.",
                max_length=3,
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="state",
            field=models.CharField(
                choices=[
                    ("guest", "Guest"),
                    ("invited", "Invited"),
                    ("registered", "Registered"),
                    ("disabled", "Disabled"),
                ],
                default="registered",
                max_length=16,
                verbose_name="account state",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
