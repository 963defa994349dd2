"""Conditions on money read shop-currency amounts, the same in memory and in SQL."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from apps.customers import services as customer_services
from apps.customers.currency import exchange_rate_set
from apps.customers.models import Customer
from apps.customers.services import LineInput
from loyalty_site.lib.conditions import EvaluationContext, audience_queryset, condition_evaluate
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _order(customer, amount, currency, days_ago):
    order, _ = customer_services.order_create(
        customer=customer,
        currency=currency,
        lines=[LineInput(title="Item", quantity=1, unit_price=Decimal(amount))],
        placed_at=NOW - timedelta(days=days_ago),
    )
    return order


@pytest.fixture
def shoppers():
    exchange_rate_set(currency="JPY", day=date(2026, 1, 1), rate="0.0067")
    exchange_rate_set(currency="EUR", day=date(2026, 1, 1), rate="1.08")
    yen = CustomerFactory(email="yen@example.com")
    _order(yen, "20640", "JPY", 3)  # 138.29 USD, not 20,640
    euro = CustomerFactory(email="euro@example.com")
    _order(euro, "150", "EUR", 3)  # 162.00
    _order(euro, "100", "EUR", 60)  # 108.00, outside a 30-day window
    refunded = _order(euro, "50", "EUR", 2)
    customer_services.refund_create(order=refunded, amount="50")  # 54.00 back
    dollar = CustomerFactory(email="usd@example.com")
    _order(dollar, "199.99", "USD", 1)
    return {"yen": yen, "euro": euro, "usd": dollar}


def _selected(condition, shoppers):
    customers = Customer.objects.filter(pk__in=[c.pk for c in shoppers.values()])
    in_memory = {
        name
        for name, customer in shoppers.items()
        if condition_evaluate(
            condition, EvaluationContext(customer=Customer.objects.get(pk=customer.pk), now=NOW)
        ).result
    }
    names = {customer.pk: name for name, customer in shoppers.items()}
    in_sql = {names[pk] for pk in audience_queryset(condition, now=NOW, base=customers).values_list("pk", flat=True)}
    assert in_memory == in_sql, condition
    return in_memory


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "customer.total_spent", "op": "gt", "value": 1000}, set()),  # the yen order is not 20,640
        ({"field": "customer.total_spent", "op": "gt", "value": 200}, {"euro"}),  # 270.00
        ({"field": "customer.total_spent", "op": "eq", "value": "138.29"}, {"yen"}),
        ({"field": "customer.total_spent", "window": {"days": 30}, "op": "gte", "value": 162}, {"euro", "usd"}),
        ({"field": "customer.total_spent", "window": {"days": 30}, "op": "eq", "value": "162.00"}, {"euro"}),
        ({"field": "customer.refunded_total", "op": "eq", "value": 54}, {"euro"}),
    ],
)
def test_customer_money_fields_are_in_the_shop_currency(shoppers, condition, expected):
    assert _selected(condition, shoppers) == expected


def test_order_total_keeps_its_currency_and_order_total_shop_is_converted(shoppers):
    order = shoppers["yen"].orders.get()
    context = EvaluationContext(customer=shoppers["yen"], order=order, now=NOW)

    big_in_yen = condition_evaluate({"field": "order.total", "op": "gt", "value": 20000}, context)
    big_in_dollars = condition_evaluate({"field": "order.total_shop", "op": "gt", "value": 200}, context)

    assert (big_in_yen.result, big_in_dollars.result) == (True, False)
    assert (big_in_yen.values, big_in_dollars.values) == ({"order.total": "20640.00"}, {"order.total_shop": "138.29"})
