"""
Fill the shop-currency amounts of rows written before they existed, and rebuild the customers' money
figures from them.

Rows in the shop currency get rate 1. Rows in another currency get the exchange-rate table's latest
rate on or before their day; when there is none (the table is new, so usually none yet) they keep
NULL shop amounts and add nothing to the customers' totals: `manage.py money_rates --missing` lists
them, and `manage.py money_rates --fill` completes them once rates are loaded.
"""

from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import migrations
from django.db.models import Sum
from django.utils import timezone


def _round(amount: Decimal) -> Decimal:
    # The shop currency has at most 2 minor units (system check): round half to even like lib/money.
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def fill(apps, schema_editor):
    Order = apps.get_model("customers", "Order")
    Refund = apps.get_model("customers", "Refund")
    Cart = apps.get_model("customers", "Cart")
    DraftOrder = apps.get_model("customers", "DraftOrder")
    Customer = apps.get_model("customers", "Customer")
    ExchangeRate = apps.get_model("customers", "ExchangeRate")
    shop = str(settings.SHOP_CURRENCY).upper()
    rates: dict = {}

    def rate_for(currency, at):
        if currency == shop:
            return Decimal("1")
        day = timezone.localdate(at) if at is not None else timezone.localdate()
        key = (currency, day)
        if key not in rates:
            rates[key] = (
                ExchangeRate.objects.filter(currency=currency, day__lte=day)
                .order_by("-day")
                .values_list("rate", flat=True)
                .first()
            )
        return rates[key]

    touched_customers = set()
    for order in Order.objects.filter(exchange_rate__isnull=True).iterator(chunk_size=2000):
        touched_customers.add(order.customer_id)
        rate = rate_for(order.currency, order.placed_at)
        if rate is None:
            continue
        order.shop_currency = shop
        order.exchange_rate = rate
        for name in ("subtotal", "discount_total", "shipping_total", "tax_total", "total"):
            setattr(order, f"{name}_shop", _round(getattr(order, name) * rate))
        refunded = refunded_shop = Decimal("0.00")
        for refund in Refund.objects.filter(order_id=order.pk).order_by("created_at", "pk"):
            left = order.total_shop - refunded_shop
            if refunded + refund.amount >= order.total:
                refund.amount_shop = left
            else:
                refund.amount_shop = max(min(_round(refund.amount * rate), left), Decimal("0.00"))
            refund.save(update_fields=["amount_shop"])
            refunded += refund.amount
            refunded_shop += refund.amount_shop
        order.refunded_total_shop = refunded_shop
        order.save(
            update_fields=[
                "shop_currency",
                "exchange_rate",
                "subtotal_shop",
                "discount_total_shop",
                "shipping_total_shop",
                "tax_total_shop",
                "total_shop",
                "refunded_total_shop",
            ]
        )
    for model in (Cart, DraftOrder):
        for row in model.objects.filter(exchange_rate__isnull=True).iterator(chunk_size=2000):
            rate = rate_for(row.currency, row.created_at)
            if rate is None:
                continue
            model.objects.filter(pk=row.pk).update(
                shop_currency=shop, exchange_rate=rate, total_shop=_round(row.total * rate)
            )
    # The customers' money figures become sums of shop-currency amounts (they used to add currencies).
    for customer_id in touched_customers:
        orders = Order.objects.filter(customer_id=customer_id)
        live = orders.exclude(status="cancelled").aggregate(gross=Sum("total_shop"), refunded=Sum("refunded_total_shop"))
        refunded_all = orders.aggregate(total=Sum("refunded_total_shop"))["total"] or Decimal("0")
        Customer.objects.filter(pk=customer_id).update(
            total_spent=(live["gross"] or Decimal("0")) - (live["refunded"] or Decimal("0")),
            refunded_total=refunded_all,
        )


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_shop_currency_amounts")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
