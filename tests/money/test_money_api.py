"""Shop-currency amounts through the API, the batch API, the CSV import, the rates API and the repair command."""

import importlib
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from apps.customers import services as customer_services
from apps.customers.currency import exchange_rate_set
from apps.customers.models import Cart, Customer, ExchangeRate, Order, Refund
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def _order(external_id: str, currency: str = "JPY", **change) -> dict:
    return {
        "external_id": external_id,
        "customer": {"external_id": f"c-{external_id}"},
        "currency": currency,
        "placed_at": "2026-11-30T10:00:00Z",
        "lines": [{"title": "Tea set", "quantity": 1, "unit_price": "20640"}],
        **change,
    }


@pytest.fixture
def yen_rate():
    exchange_rate_set(currency="JPY", day=date(2026, 11, 1), rate="0.0067")


def test_order_api_returns_both_moneys_and_refuses_an_unknown_rate_with_its_path(api, yen_rate):
    created = api.post("/api/v1/orders/", _order("o-1"), format="json")
    refused = api.post("/api/v1/orders/", _order("o-2", currency="CHF"), format="json")

    assert created.status_code == 201
    body = created.json()
    assert (body["currency"], body["total"], body["shop_currency"], body["total_shop"], body["exchange_rate"]) == (
        "JPY",
        "20640.00",
        "USD",
        "138.29",
        "0.006700000000",
    )
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["path"] == "currency"
    assert error["message"].startswith("no exchange rate for CHF on 2026-11-30 (nor any earlier day): load one")
    assert not Order.objects.filter(external_id="o-2").exists()
    assert not Customer.objects.filter(external_id="c-o-2").exists()


def test_order_api_accepts_the_shop_total_from_the_integrator(api):
    response = api.post("/api/v1/orders/", _order("o-1", currency="CHF", total_shop="23000.505"), format="json")

    assert response.status_code == 400  # more than 2 decimals is refused by the input serializer
    assert [e["path"] for e in response.json()["errors"]] == ["total_shop"]
    response = api.post("/api/v1/orders/", _order("o-1", currency="CHF", total_shop="23000.50"), format="json")
    assert response.status_code == 201
    assert (response.json()["total_shop"], Customer.objects.get(external_id="c-o-1").total_spent) == (
        "23000.50",
        Decimal("23000.50"),
    )


def test_batch_orders_report_an_unknown_currency_at_its_item_path(api, yen_rate):
    response = api.post(
        "/api/v1/batch/orders/", {"items": [_order("o-1"), _order("o-2", currency="CHF")]}, format="json"
    )

    data = response.json()
    assert (data["created"], data["failed"]) == (1, 1)
    assert [e["path"] for e in data["results"][1]["errors"]] == ["items[1].currency"]
    assert list(Order.objects.values_list("external_id", "total_shop")) == [("o-1", Decimal("138.29"))]


def test_csv_import_reports_orders_without_a_rate_and_loads_rates_from_csv(tmp_path):
    CustomerFactory(external_id="c-1")
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_external_id,customer_external_id,currency,placed_at,title,quantity,unit_price,exchange_rate\n"
        "o-1,c-1,CHF,2026-11-20T10:00:00Z,Watch,1,100.00,\n"
        "o-2,c-1,CHF,2026-11-20T10:00:00Z,Strap,1,10.00,1.12\n"
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "orders", str(orders), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines()[0].startswith("line 2: currency: no exchange rate for CHF on 2026-11-20")
    assert list(Order.objects.values_list("external_id", "total_shop")) == [("o-2", Decimal("11.20"))]

    rates = tmp_path / "rates.csv"
    rates.write_text("currency,day,rate\nchf,2026-11-01,1.13\nUSD,2026-11-01,1\nCHF,2026-11-40,1\nJPY,2026-11-01,0\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "exchange_rates", str(rates), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        "line 3: currency: USD is the shop currency: its rate is always 1.",
        "line 4: day: Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        "line 5: rate: An exchange rate must be a positive number.",
    ]
    assert list(ExchangeRate.objects.filter(currency="CHF").values_list("day", "rate", "source")) == [
        (date(2026, 11, 1), Decimal("1.13"), "import:rates.csv")
    ]

    call_command("import_csv", "orders", str(orders), stdout=StringIO(), stderr=StringIO())
    assert Order.objects.get(external_id="o-1").total_shop == Decimal("113.00")
    assert Customer.objects.get(external_id="c-1").total_spent == Decimal("124.20")


def test_exchange_rates_api_is_staff_with_permission_only():
    integrator = UserFactory(username="shop", is_staff=False, is_superuser=False)
    clerk = UserFactory(username="clerk", is_staff=True, is_superuser=False)
    manager = UserFactory(username="manager", is_staff=True, is_superuser=False)
    manager.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_exchangerate", "add_exchangerate", "change_exchangerate"])
    )
    rate = {"currency": "EUR", "day": "2026-11-30", "rate": "1.08"}
    answers = []
    for user in (integrator, clerk):
        client = APIClient()
        client.force_authenticate(user)
        answers.append(
            (
                client.post("/api/v1/exchange-rates/", rate).status_code,
                client.get("/api/v1/exchange-rates/").status_code,
            )
        )
    assert answers == [(403, 403), (403, 403)]
    assert not ExchangeRate.objects.filter(currency="EUR", day=date(2026, 11, 30)).exists()

    client = APIClient()
    client.force_authenticate(manager)
    first = client.post("/api/v1/exchange-rates/", rate)
    again = client.post("/api/v1/exchange-rates/", {**rate, "rate": "1.09"})
    batch = client.post(
        "/api/v1/exchange-rates/batch/",
        {
            "items": [
                {"currency": "JPY", "day": "2026-11-30", "rate": "0.0067"},
                {"currency": "USD", "day": "2026-11-30", "rate": "1"},
                {"currency": "GBP", "day": "x", "rate": "1.27"},
            ]
        },
    )
    listed = client.get("/api/v1/exchange-rates/?currency=eur&day_from=2026-01-01")

    assert (first.status_code, again.status_code, again.json()["rate"]) == (201, 200, "1.090000000000")
    assert batch.json() == {
        "created": 1,
        "updated": 0,
        "failed": 2,
        "errors": [
            {
                "path": "items[1].currency",
                "message": "USD is the shop currency: its rate is always 1.",
                "code": "invalid",
            },
            {
                "path": "items[2].day",
                "message": "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
                "code": "invalid",
            },
        ],
    }
    assert [(r["currency"], r["day"], r["rate"]) for r in listed.json()["results"]] == [
        ("EUR", "2026-11-30", "1.090000000000")
    ]


def _forget_shop_amounts(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(
        shop_currency="",
        exchange_rate=None,
        subtotal_shop=None,
        discount_total_shop=None,
        shipping_total_shop=None,
        tax_total_shop=None,
        total_shop=None,
        refunded_total_shop=None,
    )
    Refund.objects.filter(order=order).update(amount_shop=None)


def test_data_migration_fills_known_rates_and_the_command_lists_then_fills_the_rest():
    # Rows as they were before shop amounts existed: the customer's total spent added USD and CHF.
    customer = CustomerFactory()
    exchange_rate_set(currency="CHF", day=date(2026, 1, 1), rate="1.10")
    dollars = make_order(customer, total="30.00", placed_at=datetime(2026, 11, 20, tzinfo=UTC))
    francs = make_order(customer, total="100.00", currency="CHF", placed_at=datetime(2026, 11, 20, tzinfo=UTC))
    customer_services.refund_create(order=francs, amount="40")
    customer_services.cart_upsert(
        customer=customer, currency="CHF", lines=[{"title": "x", "quantity": 1, "unit_price": "5"}], external_id="k"
    )
    for order in (dollars, francs):
        _forget_shop_amounts(order)
    Cart.objects.update(exchange_rate=None, total_shop=None, shop_currency="")
    ExchangeRate.objects.filter(currency="CHF").delete()
    Customer.objects.filter(pk=customer.pk).update(total_spent=Decimal("90.00"), refunded_total=Decimal("40.00"))

    migration = importlib.import_module("apps.customers.migrations.0006_fill_shop_amounts")
    migration.fill(django_apps, None)

    customer.refresh_from_db()
    dollars.refresh_from_db()
    assert (dollars.exchange_rate, dollars.total_shop) == (Decimal("1"), Decimal("30.00"))
    assert Order.objects.get(pk=francs.pk).total_shop is None  # no CHF rate known yet: not summed
    assert (customer.total_spent, customer.refunded_total) == (Decimal("30.00"), Decimal("0.00"))
    out = StringIO()
    with pytest.raises(CommandError, match="2 row"):
        call_command("money_rates", "--missing", stdout=out)
    assert out.getvalue().splitlines() == [
        "orders: 1 in CHF on 2026-11-20 without a rate",
        f"carts: 1 in CHF on {Cart.objects.get().created_at.date().isoformat()} without a rate",
    ]

    exchange_rate_set(currency="CHF", day=date(2026, 1, 1), rate="1.10")
    out = StringIO()
    call_command("money_rates", "--fill", stdout=out)

    assert out.getvalue().splitlines() == ["filled: 2 row(s)", "every row has its shop-currency amounts"]
    francs.refresh_from_db()
    customer.refresh_from_db()
    assert (francs.total_shop, francs.refunded_total_shop, Refund.objects.get().amount_shop) == (
        Decimal("110.00"),
        Decimal("44.00"),
        Decimal("44.00"),
    )
    assert (customer.total_spent, customer.refunded_total) == (Decimal("96.00"), Decimal("44.00"))
    assert Cart.objects.get().total_shop == Decimal("5.50")
