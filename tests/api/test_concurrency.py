import threading

import pytest
from rest_framework.test import APIClient

from apps.customers.api import views
from apps.customers.models import Customer, Order
from apps.platform.models import IdempotencyRecord
from tests.factories import CustomerFactory, UserFactory
from tests.threads import run_together


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_first_requests_with_one_key_produce_one_effect(monkeypatch):
    user = UserFactory(username="integrator")
    customer = CustomerFactory()
    body = {
        "customer_id": customer.pk,
        "currency": "EUR",
        "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5"}],
    }
    both_inside = threading.Barrier(2, timeout=10)
    original = views.ingest.order_ingest

    def order_ingest_when_both_are_inside(**kwargs):
        both_inside.wait()  # both requests have passed the replay check and hold no record yet
        return original(**kwargs)

    monkeypatch.setattr(views.ingest, "order_ingest", order_ingest_when_both_are_inside)

    def post() -> int:
        client = APIClient()
        client.force_authenticate(user)
        return client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code

    statuses = run_together(post, post)

    assert sorted(statuses) == [201, 409]
    assert Order.objects.count() == 1
    assert Customer.objects.get(pk=customer.pk).orders_count == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_orders_with_one_new_external_id_store_one_and_answer_it_twice(monkeypatch):
    from apps.customers.api import ingest

    user = UserFactory(username="integrator")
    customer = CustomerFactory()
    body = {
        "external_id": "o-race",
        "customer_id": customer.pk,
        "currency": "EUR",
        "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5"}],
    }
    both_checked = threading.Barrier(2, timeout=10)
    original = ingest.services.order_create

    def order_create_after_both_checked(**kwargs):
        both_checked.wait()  # both requests found no stored order with this external id
        return original(**kwargs)

    monkeypatch.setattr(ingest.services, "order_create", order_create_after_both_checked)

    def post() -> tuple[int, int]:
        client = APIClient()
        client.force_authenticate(user)
        response = client.post("/api/v1/orders/", body, format="json")
        return response.status_code, response.json()["id"]

    answers = run_together(post, post)

    order = Order.objects.get()
    assert sorted(answers) == [(200, order.pk), (201, order.pk)]
    assert Customer.objects.get(pk=customer.pk).orders_count == 1
