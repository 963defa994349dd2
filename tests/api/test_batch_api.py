import pytest

from apps.customers.models import Customer, CustomerEvent, Order, OrderLine

pytestmark = pytest.mark.django_db


def _order(external_id: str, **change) -> dict:
    return {
        "external_id": external_id,
        "customer": {"external_id": f"c-{external_id}"},
        "currency": "EUR",
        "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5.00"}],
        **change,
    }


def test_batch_orders_writes_good_items_and_reports_bad_ones_with_item_paths(api):
    api.post("/api/v1/orders/", _order("o-0"), format="json")
    items = [
        _order("o-1"),
        _order("o-2", lines=[{"title": "Mug", "quantity": 1, "unit_price": "x"}]),
        _order("o-0"),
        _order("o-3", discount_total="100.00"),
        _order("o-4"),
    ]

    response = api.post("/api/v1/batch/orders/", {"items": items}, format="json")

    assert response.status_code == 200
    data = response.json()
    assert (data["created"], data["existing"], data["failed"]) == (2, 1, 2)
    assert [(r["index"], r["status"], r["external_id"]) for r in data["results"]] == [
        (0, "created", "o-1"),
        (1, "error", "o-2"),
        (2, "existing", "o-0"),
        (3, "error", "o-3"),
        (4, "created", "o-4"),
    ]
    assert [e["path"] for e in data["results"][1]["errors"]] == ["items[1].lines[0].unit_price"]
    assert [e["path"] for e in data["results"][3]["errors"]] == ["items[3].total"]
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["o-0", "o-1", "o-4"]
    assert OrderLine.objects.count() == 3
    # The bad items are atomic: the customer embedded in item 3 was not kept.
    assert not Customer.objects.filter(external_id="c-o-3").exists()


def test_batch_events(api):
    Customer.objects.create(external_id="c-1")
    items = [
        {"external_id": "e-1", "customer_external_id": "c-1", "name": "social_like"},
        {"external_id": "e-2", "customer_external_id": "nobody", "name": "social_like"},
    ]

    data = api.post("/api/v1/batch/events/", {"items": items}, format="json").json()

    assert (data["created"], data["failed"]) == (1, 1)
    assert data["results"][1]["errors"][0]["path"] == "items[1].customer_external_id"
    assert list(CustomerEvent.objects.values_list("external_id", flat=True)) == ["e-1"]


@pytest.mark.parametrize(
    ("body", "message"),
    [({"items": []}, "at least one"), ({"items": "x"}, "list"), ({}, "list")],
)
def test_batch_refuses_empty_or_malformed_bodies(api, body, message):
    response = api.post("/api/v1/batch/orders/", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "items"
    assert message in response.json()["errors"][0]["message"]


def test_batch_refuses_more_than_1000_items_and_writes_nothing(api):
    items = [_order(f"o-{index}") for index in range(1001)]

    response = api.post("/api/v1/batch/orders/", {"items": items}, format="json")

    assert response.status_code == 400
    assert "1000" in response.json()["message"]
    assert Order.objects.count() == 0


def test_batch_replay_with_the_same_idempotency_key_writes_nothing_twice(api):
    body = {"items": [_order("o-1")]}

    first = api.post("/api/v1/batch/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    second = api.post("/api/v1/batch/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="b-1")

    assert second.json() == first.json()
    assert second.json()["created"] == 1
    assert Order.objects.count() == 1
