from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Q, Sum
from django.utils import timezone

from apps.customers.models import Customer, ExchangeRate, Order
from apps.loyalty import services
from apps.loyalty.models import Membership

pytestmark = pytest.mark.django_db


def test_demo_loads_rates_and_converts_the_yen_order_of_the_issue(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    call_command("load_demo", "--no-admin", stdout=StringIO())
    call_command("load_demo", "--no-admin", stdout=StringIO())  # idempotent: no second set of rates

    day = timezone.localdate() - timedelta(days=401)
    assert sorted(ExchangeRate.objects.filter(source="demo").values_list("currency", "day", "rate")) == [
        ("EUR", day, Decimal("1.1")),
        ("GBP", day, Decimal("1.294117647059")),
        ("JPY", day, Decimal("0.006875")),
    ]
    yen = Order.objects.get(external_id="demo-o-1014")
    assert (yen.currency, yen.total, yen.shop_currency, yen.total_shop) == (
        "JPY",
        Decimal("20640.00"),
        "USD",
        Decimal("141.90"),
    )
    assert not Order.objects.filter(Q(total_shop__isnull=True) | Q(exchange_rate__isnull=True)).exists()
    for customer in Customer.objects.filter(orders__isnull=False).distinct():
        live = customer.orders.exclude(status="cancelled")
        net = live.aggregate(net=Sum("total_shop") - Sum("refunded_total_shop"))["net"]
        assert customer.total_spent == (net or Decimal("0.00"))
    japanese = Customer.objects.get(external_id="demo-c-10")
    assert japanese.total_spent == Decimal("141.90")
    lots = services.order_points_earn(order=yen)
    membership = Membership.objects.get(customer=japanese)
    assert sum(lot.amount for lot in membership.lots.filter(order=yen)) == 141
    assert lots == [] or sum(lot.amount for lot in lots) == 141
