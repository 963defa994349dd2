"""
A single-event POST with an `external_id`: one look-up of the id (the service's), no savepoint, one commit; a
re-send answers the stored event without a write; a concurrent first write of the same id answers that row.
"""

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from apps.customers.api import ingest
from apps.customers.models import CustomerEvent, DomainEvent
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"customer_external_id": "c1", "name": "bench", "external_id": "e-1"}


def _post(client, body: dict) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/events/", body, format="json")
    return response, [query["sql"] for query in captured.captured_queries]


def _event_lookups(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and "customers_customerevent" in s]


def test_an_event_with_an_external_id_is_looked_up_once_without_a_savepoint(api):
    customer = CustomerFactory(external_id="c1")

    response, statements = _post(api, BODY)

    assert response.status_code == 201
    assert len(_event_lookups(statements)) == 1, "\n".join(statements)
    assert not [s for s in statements if "SAVEPOINT" in s]
    assert [s for s in statements if s.startswith("COMMIT")] == ["COMMIT"]
    event = CustomerEvent.objects.get()
    assert (event.customer, event.external_id) == (customer, "e-1")
    assert DomainEvent.objects.filter(name="event.custom").count() == 1


def test_a_resent_external_id_is_one_look_up_and_no_write(api):
    CustomerFactory(external_id="c1")
    first, _ = _post(api, BODY)

    again, statements = _post(api, {**BODY, "name": "other"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(_event_lookups(statements)) == 1
    assert not [s for s in statements if s.startswith("INSERT") or "SAVEPOINT" in s]
    assert (CustomerEvent.objects.count(), DomainEvent.objects.filter(name="event.custom").count()) == (1, 1)


def test_a_concurrent_first_write_of_the_external_id_answers_its_row(api, monkeypatch):
    customer = CustomerFactory(external_id="c1")
    winner = CustomerEvent.objects.create(customer=customer, name="first", external_id="e-1")

    def insert_lost(**kwargs):
        # what the unique constraint does to the second of two concurrent first writes (its look-up found nothing)
        CustomerEvent.objects.create(customer=kwargs["customer"], name=kwargs["name"], external_id="e-1")

    monkeypatch.setattr(ingest.services, "custom_event_record", insert_lost)

    response = api.post("/api/v1/events/", BODY, format="json")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["name"]) == (winner.pk, "first")
    assert CustomerEvent.objects.count() == 1


def test_an_integrity_error_with_no_stored_event_is_not_hidden(monkeypatch):
    def broken(**kwargs):
        raise IntegrityError("something else")

    monkeypatch.setattr(ingest.services, "custom_event_record", broken)
    customer = CustomerFactory(external_id="c1")
    data = {"name": "bench", "external_id": "e-9"}

    with pytest.raises(IntegrityError):
        ingest.custom_event_ingest(data=data, customer_ref={"customer_id": customer.pk, "known": customer})
