from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.customers.models import Customer, DomainEvent, Order, OrderLine, Refund
from tests.factories import CustomerFactory, ProductFactory, StoreFactory, make_order

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int, int]:
    return (
        Customer.objects.count(),
        Order.objects.count(),
        OrderLine.objects.count(),
        Refund.objects.count(),
        DomainEvent.objects.count(),
    )


def test_create_an_order_with_an_embedded_customer_and_product_lines(api):
    teddy = ProductFactory(external_id="sku-teddy", title="Teddy", price="19.90")
    body = {
        "external_id": "o-1",
        "customer": {"external_id": "c-1", "email": "ana@example.com", "country": "PT"},
        "currency": "eur",
        "shipping_country": "pt",
        "placed_at": "2026-03-01T10:15:00Z",
        "lines": [
            {"product_external_id": "sku-teddy", "quantity": 2, "unit_price": "19.90"},
            {"title": "Gift wrap", "quantity": 1, "unit_price": "2.50"},
        ],
    }

    response = api.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 201
    data = response.json()
    assert (data["external_id"], data["currency"], data["total"], data["status"]) == ("o-1", "EUR", "42.30", "paid")
    assert data["customer_external_id"] == "c-1"
    assert [(line["title"], line["product_id"], line["total"]) for line in data["lines"]] == [
        ("Teddy", teddy.pk, "39.80"),
        ("Gift wrap", None, "2.50"),
    ]
    customer = Customer.objects.get(external_id="c-1")
    assert (customer.email, customer.orders_count, customer.total_spent) == ("ana@example.com", 1, Decimal("42.30"))
    assert customer.last_order_at == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert sorted(DomainEvent.objects.values_list("name", flat=True)) == [
        "customer.registered",
        "order.created",
        "product.purchased",
    ]


def test_an_embedded_existing_customer_is_updated_not_duplicated(api):
    CustomerFactory(external_id="c-1", first_name="Old")
    body = {
        "customer": {"external_id": "c-1", "first_name": "New"},
        "currency": "EUR",
        "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5"}],
    }

    assert api.post("/api/v1/orders/", body, format="json").status_code == 201

    assert list(Customer.objects.values_list("first_name", flat=True)) == ["New"]


def test_create_with_a_customer_reference_and_a_store(api):
    customer = CustomerFactory(external_id="c-2")
    StoreFactory(code="berlin")

    by_external = api.post(
        "/api/v1/orders/",
        {
            "customer_external_id": "c-2",
            "currency": "EUR",
            "channel": "pos",
            "store_code": "berlin",
            "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5"}],
        },
        format="json",
    )
    by_id = api.post(
        "/api/v1/orders/",
        {"customer_id": customer.pk, "currency": "EUR", "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5"}]},
        format="json",
    )

    assert (by_external.status_code, by_id.status_code) == (201, 201)
    assert (by_external.json()["channel"], by_external.json()["store_code"]) == ("pos", "berlin")
    customer.refresh_from_db()
    assert customer.orders_count == 2


def test_resending_an_existing_external_id_returns_the_stored_order_with_200_and_writes_nothing(api):
    body = {
        "external_id": "o-7",
        "customer": {"external_id": "c-7"},
        "currency": "USD",
        "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5"}],
    }
    first = api.post("/api/v1/orders/", body, format="json")
    before = _counts()

    second = api.post("/api/v1/orders/", {**body, "customer": {"external_id": "c-7", "first_name": "X"}}, format="json")

    assert second.status_code == 200
    assert second.json() == first.json()
    assert _counts() == before
    assert Customer.objects.get(external_id="c-7").first_name == ""


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            {
                "lines": [
                    {"title": "A", "quantity": 1, "unit_price": "1"},
                    {"title": "B", "quantity": 0, "unit_price": "1"},
                ]
            },
            "lines[1].quantity",
        ),
        (
            {"lines": [{"product_external_id": "missing", "quantity": 1, "unit_price": "1"}]},
            "lines[0].product_external_id",
        ),
        ({"lines": [{"quantity": 1, "unit_price": "1"}]}, "lines[0].title"),
        ({"lines": [{"title": "A", "quantity": 1, "unit_price": "-1"}]}, "lines[0].unit_price"),
        ({"lines": []}, "lines"),
        ({"currency": "EURO"}, "currency"),
        ({"customer_external_id": "c-1"}, "customer"),
        ({"customer": None, "customer_external_id": "nobody"}, "customer_external_id"),
        ({"customer": {"email": "x@example.com"}}, "customer.external_id"),
        ({"customer": {"external_id": "c-1", "email": "bad"}}, "customer.email"),
        ({"store_code": "nowhere"}, "store_code"),
        ({"channel": "fax"}, "channel"),
    ],
)
def test_bad_order_input_is_a_400_with_the_field_path_and_nothing_written(api, change, path):
    ProductFactory(external_id="sku-1")
    body = {
        "external_id": "o-bad",
        "customer": {"external_id": "c-1"},
        "currency": "EUR",
        "lines": [{"title": "A", "quantity": 1, "unit_price": "1"}],
    }
    body.update(change)
    body = {key: value for key, value in body.items() if value is not None}
    before = _counts()

    response = api.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert path in [error["path"] for error in response.json()["errors"]]
    assert _counts() == before


def test_a_service_refusal_after_the_customer_upsert_rolls_the_upsert_back(api):
    body = {
        "customer": {"external_id": "c-new"},
        "currency": "EUR",
        "discount_total": "10.00",
        "lines": [{"title": "A", "quantity": 1, "unit_price": "1"}],
    }
    before = _counts()

    response = api.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "total"
    assert _counts() == before


def test_cancel_action(api):
    customer = CustomerFactory()
    order = make_order(customer, total="30.00")

    response = api.post(f"/api/v1/orders/{order.pk}/cancel/", format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    customer.refresh_from_db()
    assert (customer.orders_count, customer.total_spent) == (0, Decimal("0.00"))


def test_refunds_are_created_listed_and_never_duplicated_by_external_id(api):
    customer = CustomerFactory()
    order = make_order(customer, total="50.00")
    url = f"/api/v1/orders/{order.pk}/refunds/"

    first = api.post(url, {"external_id": "rf-1", "amount": "20.00", "reason": "damaged"}, format="json")
    again = api.post(url, {"external_id": "rf-1", "amount": "20.00", "reason": "damaged"}, format="json")
    listed = api.get(url)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert [row["amount"] for row in listed.json()] == ["20.00"]
    order.refresh_from_db()
    customer.refresh_from_db()
    assert (order.status, order.refunded_total) == ("partially_refunded", Decimal("20.00"))
    assert (customer.total_spent, customer.refunded_total) == (Decimal("30.00"), Decimal("20.00"))


def test_a_refund_above_the_refundable_amount_is_a_400_on_amount_and_writes_nothing(api):
    order = make_order(CustomerFactory(), total="10.00")
    before = _counts()

    response = api.post(f"/api/v1/orders/{order.pk}/refunds/", {"amount": "10.01"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "amount"
    assert _counts() == before


def test_order_list_filters(api):
    anna = CustomerFactory(external_id="anna")
    make_order(anna, external_id="o-1", channel="pos")
    make_order(CustomerFactory(), external_id="o-2")

    def ids(query: str) -> list[str]:
        return [row["external_id"] for row in api.get(f"/api/v1/orders/?{query}").json()["results"]]

    assert ids("customer_external_id=anna") == ["o-1"]
    assert ids("channel=pos") == ["o-1"]
    assert ids(f"customer={anna.pk}") == ["o-1"]
    assert ids("external_id=o-2") == ["o-2"]
