from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.customers.models import Customer, DomainEvent, Order, OrderLine
from apps.tagging.models import CustomerTag
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """external_id,email,first_name,country,preferred_currency,birthday,accepts_marketing,attributes,tags
c-1,ana@example.com,Ana,pt,eur,1990-04-01,yes,"{""weather_zone"": ""warm""}",VIP;Parent
c-2,not-an-email,Bob,US,USD,,true,,
c-3,carl@example.com,Carl,DE,EUR,1985-13-40,no,,
c-4,dora@example.com,Dora,GB,GBP,,maybe,,
c-1,again@example.com,Ana,PT,EUR,,,,
c-5,eve@example.com,Eve,FR,EUR,,0,,Newsletter
"""


def _run(kind: str, path, *extra: str) -> tuple[str, str, str | None]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_csv", kind, str(path), *extra, stdout=out, stderr=err)
        failure = None
    except CommandError as error:
        failure = str(error)
    return out.getvalue(), err.getvalue(), failure


def test_customers_import_reports_bad_rows_with_line_numbers_and_imports_the_good_ones(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_CSV)

    out, err, failure = _run("customers", path, "--batch-size", "1")

    assert err.splitlines() == [
        "line 3: email: Enter a valid email address.",
        "line 4: birthday: Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        "line 5: accepts_marketing: use true/false, yes/no or 1/0.",
        "line 6: external_id: 'c-1' already on line 2.",
    ]
    assert failure == "4 bad row(s) were not imported; see the lines above."
    assert "customers: 1/2" in out
    assert "customers: 2 imported, 4 bad row(s) skipped." in out
    ana = Customer.objects.get(external_id="c-1")
    assert (ana.email, ana.country, ana.preferred_currency, ana.accepts_marketing) == (
        "ana@example.com",
        "PT",
        "EUR",
        True,
    )
    assert ana.attributes == {"weather_zone": "warm"}
    assert Customer.objects.get(external_id="c-5").accepts_marketing is False
    assert sorted(CustomerTag.objects.values_list("tag__name", "source", "source_ref")) == [
        ("Newsletter", "import", "import:customers.csv"),
        ("Parent", "import", "import:customers.csv"),
        ("VIP", "import", "import:customers.csv"),
    ]


def test_customers_import_is_idempotent(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_CSV)
    _run("customers", path)
    events = DomainEvent.objects.count()

    _run("customers", path)

    assert Customer.objects.count() == 2
    assert CustomerTag.objects.count() == 3
    assert DomainEvent.objects.count() == events


def test_a_bad_header_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("id,mail\n1,a@example.com\n")

    _out, _err, failure = _run("customers", path)

    assert failure.startswith("Bad header in ")
    assert "unknown column(s) id, mail" in failure
    assert "missing column(s) external_id" in failure
    assert Customer.objects.count() == 0


ORDERS_HEADER = (
    "order_external_id,customer_external_id,currency,placed_at,channel,product_external_id,title,quantity,unit_price"
)
ORDERS_CSV = f"""{ORDERS_HEADER}
o-1,c-1,EUR,2024-05-01T10:00:00Z,online,sku-1,,2,10.00
o-1,c-1,EUR,2024-05-01T10:00:00Z,online,,Gift wrap,1,2.50
o-2,c-1,EUR,2024-06-01T10:00:00Z,pos,,Mug,0,5.00
o-3,nobody,EUR,2024-06-02T10:00:00Z,online,,Mug,1,5.00
o-4,c-1,EUR,2024-06-03T10:00:00Z,online,,Mug,1,5.00
o-4,c-1,USD,2024-06-03T10:00:00Z,online,,Cup,1,5.00
o-5,c-1,EUR,2024-07-01T10:00:00Z,online,missing-sku,,1,5.00
o-6,c-1,EUR,2024-08-01T10:00:00Z,online,,Scarf,1,30.00
"""


def test_orders_import_groups_lines_reports_bad_rows_and_imports_the_good_orders(tmp_path):
    customer = CustomerFactory(external_id="c-1")
    ProductFactory(external_id="sku-1", title="Teddy")
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV)

    out, err, failure = _run("orders", path, "--batch-size", "1")

    assert err.splitlines() == [
        "line 4: quantity: Ensure this value is greater than or equal to 1.",
        "line 5: customer_external_id: No customer with external id 'nobody'.",
        "line 6: order 'o-4': its rows disagree (see below).",
        "line 7: currency: differs from line 6 of the same order.",
        "line 8: product_external_id: No product with this external id.",
    ]
    assert failure == "5 bad row(s) were not imported; see the lines above."
    assert "orders: 2 imported, 5 bad row(s) skipped." in out
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["o-1", "o-6"]
    assert list(OrderLine.objects.filter(order__external_id="o-1").values_list("title", "quantity")) == [
        ("Teddy", 2),
        ("Gift wrap", 1),
    ]
    customer.refresh_from_db()
    assert (customer.orders_count, customer.total_spent) == (2, Decimal("52.50"))
    assert customer.first_order_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_orders_import_twice_never_duplicates(tmp_path):
    CustomerFactory(external_id="c-1")
    ProductFactory(external_id="sku-1")
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV)
    _run("orders", path)

    out, _err, _failure = _run("orders", path)

    assert Order.objects.count() == 2
    assert "(2 already present)" in out
    assert "orders: 0 imported" in out


def test_dry_run_writes_nothing(tmp_path):
    CustomerFactory(external_id="c-1")
    ProductFactory(external_id="sku-1")
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV)

    out, _err, _failure = _run("orders", path, "--dry-run")

    assert "orders: 2 valid (dry run, nothing written)" in out
    assert Order.objects.count() == 0
