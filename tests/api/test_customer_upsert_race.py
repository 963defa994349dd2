"""Registering the same new customer from concurrent requests makes one customer and no error."""

import threading
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from apps.customers import services
from apps.customers.models import Customer, DomainEvent, Order
from tests.threads import run_together


def test_an_upsert_that_loses_the_insert_race_updates_the_winners_row(db, monkeypatch):
    winner = Customer.objects.create(external_id="c-race", first_name="Winner")
    original = services._customer_locked
    lookups: list[str] = []

    def first_lookup_before_the_winner_committed(*, external_id):
        lookups.append(external_id)
        return None if len(lookups) == 1 else original(external_id=external_id)

    monkeypatch.setattr(services, "_customer_locked", first_lookup_before_the_winner_committed)

    customer, created = services.customer_upsert(external_id="c-race", last_name="Loser", cause="test")

    assert created is False
    assert lookups == ["c-race", "c-race"]
    assert Customer.objects.filter(external_id="c-race").count() == 1
    stored = Customer.objects.get(external_id="c-race")
    assert (stored.pk, stored.first_name, stored.last_name) == (winner.pk, "Winner", "Loser")
    assert customer.pk == winner.pk
    assert DomainEvent.objects.filter(name="customer.registered").count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_thirty_concurrent_orders_for_one_new_customer_make_one_customer_and_no_500(integrator, monkeypatch):
    threads_count = 30  # (+1 connection for the test itself: well under the 40 a test may hold)
    all_looked = threading.Barrier(threads_count, timeout=60)
    original = services.customer_create

    def create_once_everyone_found_no_customer(**kwargs):
        all_looked.wait()  # every request has looked the external id up and found nothing
        return original(**kwargs)

    monkeypatch.setattr(services, "customer_create", create_once_everyone_found_no_customer)

    def post(index: int) -> Callable[[], int]:
        body = {
            "external_id": f"o-{index}",
            "customer": {"external_id": "c-new", "email": "new@example.com"},
            "currency": "USD",
            "lines": [{"title": "Tea", "quantity": 1, "unit_price": "3.00"}],
        }

        def send() -> int:
            client = APIClient(raise_request_exception=False)
            client.force_authenticate(integrator)
            return client.post("/api/v1/orders/", body, format="json").status_code

        return send

    statuses = run_together(*(post(index) for index in range(threads_count)))

    assert statuses == [201] * threads_count
    customer = Customer.objects.get(external_id="c-new")
    assert Customer.objects.count() == 1
    assert Order.objects.filter(customer=customer).count() == threads_count
    assert Customer.objects.get(pk=customer.pk).orders_count == threads_count
    assert DomainEvent.objects.filter(name="customer.registered").count() == 1
