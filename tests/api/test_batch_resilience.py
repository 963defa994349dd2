"""Order batches commit item by item, event batches once: a lost connection never hides what was stored."""

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from apps.customers import services
from apps.customers.models import Customer, CustomerEvent, Order


def _orders(count: int) -> list[dict]:
    return [
        {
            "external_id": f"o-{index}",
            "customer": {"external_id": f"c-{index}"},
            "currency": "USD",
            "lines": [{"title": "Tea", "quantity": 1, "unit_price": "3.00"}],
        }
        for index in range(count)
    ]


@pytest.fixture
def client(integrator) -> APIClient:
    client = APIClient()
    client.force_authenticate(integrator)
    return client


def _cut_once(monkeypatch, name: str, external_id: str) -> None:
    """The database connection drops while item `external_id` is being written (once)."""
    original = getattr(services, name)
    state = {"cut": False}

    def write(**kwargs):
        if kwargs.get("external_id") == external_id and not state["cut"]:
            state["cut"] = True
            raise OperationalError("server closed the connection unexpectedly")
        return original(**kwargs)

    monkeypatch.setattr(services, name, write)


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_at_item_k_reports_the_items_before_it_stored_and_a_retry_completes_the_batch(
    client, monkeypatch
):
    _cut_once(monkeypatch, "order_create", "o-3")
    items = _orders(6)

    first = client.post("/api/v1/batch/orders/", {"items": items}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")

    assert first.status_code == 503
    assert first["Retry-After"] == "5"
    body = first.json()
    assert body["error"] == "service_unavailable"
    assert body["errors"][0]["path"] == "items[3]"
    assert (body["created"], body["existing"], body["failed"]) == (3, 0, 3)
    assert [(r["index"], r["status"], r["external_id"]) for r in body["results"]] == [
        (0, "created", "o-0"),
        (1, "created", "o-1"),
        (2, "created", "o-2"),
        (3, "error", "o-3"),
        (4, "error", "o-4"),
        (5, "error", "o-5"),
    ]
    assert body["results"][3]["errors"] == [
        {
            "path": "items[3]",
            "message": "Not stored: the database became unavailable; send this item again.",
            "code": "service_unavailable",
        }
    ]
    assert [r["id"] for r in body["results"][:3]] == list(Order.objects.order_by("pk").values_list("pk", flat=True))
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["o-0", "o-1", "o-2"]
    # the item being written when the connection dropped left nothing behind, not even its customer
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["c-0", "c-1", "c-2"]

    retry = client.post("/api/v1/batch/orders/", {"items": items}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    replay = client.post("/api/v1/batch/orders/", {"items": items}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")

    assert retry.status_code == 200
    assert [r["status"] for r in retry.json()["results"]] == ["existing"] * 3 + ["created"] * 3
    assert (retry.json()["created"], retry.json()["existing"], retry.json()["failed"]) == (3, 3, 0)
    assert [r["id"] for r in retry.json()["results"][:3]] == [r["id"] for r in body["results"][:3]]
    assert sorted(Order.objects.values_list("external_id", flat=True)) == [f"o-{i}" for i in range(6)]
    assert Customer.objects.count() == 6
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == retry.json()
    assert Order.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_an_event_batch_cut_while_written_stores_nothing_and_says_so_for_every_item(client, monkeypatch):
    """Event batches commit once (set-based): a cut connection loses the whole write, and every item says so."""
    Customer.objects.create(external_id="c-1")
    original = services.custom_events_record_bulk
    state = {"cut": False}

    def write(**kwargs):
        if not state["cut"]:
            state["cut"] = True
            raise OperationalError("server closed the connection unexpectedly")
        return original(**kwargs)

    monkeypatch.setattr(services, "custom_events_record_bulk", write)
    items = [{"external_id": f"e-{i}", "customer_external_id": "c-1", "name": "review_posted"} for i in range(2)]

    first = client.post("/api/v1/batch/events/", {"items": items}, format="json")
    stored_after_the_cut = CustomerEvent.objects.count()
    retry = client.post("/api/v1/batch/events/", {"items": items}, format="json")

    assert first.status_code == 503
    assert first.json()["errors"][0]["path"] == "items[0]"
    assert [r["status"] for r in first.json()["results"]] == ["error", "error"]
    assert [r["errors"][0]["path"] for r in first.json()["results"]] == ["items[0]", "items[1]"]
    assert stored_after_the_cut == 0
    assert retry.status_code == 200
    assert [r["status"] for r in retry.json()["results"]] == ["created", "created"]
    assert CustomerEvent.objects.count() == 2
