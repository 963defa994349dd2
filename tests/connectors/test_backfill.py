"""History back-fill from Shopify's customers and orders CSV exports: idempotent, with progress."""

from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.customers.models import Customer, Order, Refund
from apps.tagging.models import CustomerTag
from tests.connectors.support import fixture

pytestmark = pytest.mark.django_db

EXPORTS = Path(__file__).parent / "fixtures" / "shopify_exports"


def run(kind: str, name: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(
            "connectors_backfill",
            kind,
            str(EXPORTS / name),
            shop="apple.myshopify.com",
            every=1,
            stdout=out,
            stderr=err,
        )
    except CommandError as error:
        err.write(str(error))
    return out.getvalue(), err.getvalue()


def test_customers_export_is_loaded_once_with_progress(shop):
    out, err = run("customers", "customers_export.csv")
    assert "customers: 3 done (rows in file: 3), 2 new, 0 already there, 1 refused" in out
    assert "line 4: Customer ID is empty" in err
    bob = Customer.objects.get(external_id="shopify:apple.myshopify.com:706405506930370084")
    assert (bob.email, bob.country, bob.accepts_marketing) == ("bob@biller.com", "US", True)
    assert sorted(CustomerTag.objects.filter(customer=bob).values_list("tag__name", flat=True)) == ["Newsletter", "VIP"]
    assert Customer.objects.get(external_id="shopify:apple.myshopify.com:207119551").accepts_marketing is False

    out, _ = run("customers", "customers_export.csv")
    assert "0 new, 2 already there" in out
    assert Customer.objects.count() == 2


def test_orders_export_groups_lines_links_customers_and_is_idempotent(shop, deliver):
    run("customers", "customers_export.csv")
    out, err = run("orders", "orders_export.csv")
    assert "orders: 3 done (rows in file: 4), 2 new, 0 already there, 1 refused" in out
    assert "line 5: Id/Name, Currency or Total is empty" in err
    first = Order.objects.get(external_id="shopify:apple.myshopify.com:450789469")
    assert first.customer.external_id == "shopify:apple.myshopify.com:706405506930370084"
    assert (first.total, first.discount_total, first.shipping_total) == (
        Decimal("254.98"),
        Decimal("5.00"),
        Decimal("10.00"),
    )
    assert list(first.lines.values_list("title", "unit_price")) == [
        ("Aviator sunglasses", Decimal("89.99")),
        ("Mid-century lounger", Decimal("159.99")),
    ]
    pos = Order.objects.get(external_id="shopify:apple.myshopify.com:450789470")
    assert (pos.channel, pos.shipping_country, pos.customer.email) == ("pos", "CA", "walkin@example.com")
    assert Refund.objects.get(order=pos).amount == Decimal("15.00")

    out, _ = run("orders", "orders_export.csv")
    assert "0 new, 2 already there" in out
    assert Order.objects.count() == 2 and Refund.objects.count() == 1

    # A webhook for a back-filled customer updates that same customer.
    body = fixture("shopify", "customers/create")
    body.update({"first_name": "Robert", "updated_at": "2026-01-01T00:00:00-05:00"})
    deliver(shop, "customers/update", body)
    assert Customer.objects.get(email="bob@biller.com").first_name == "Robert"


def test_an_unknown_shop_is_refused(db):
    with pytest.raises(CommandError, match="No connected shop"):
        call_command("connectors_backfill", "customers", str(EXPORTS / "customers_export.csv"), shop="nope.example")
