"""
`POST /api/v1/events/` reads a plain body and writes its answer without DRF's field machinery (issue 12): the same
validated values, the same 400 bodies and paths, the same answer bytes as `CustomEventCreateSerializer` and
`CustomerEventSerializer` give. Each case is compared with the serializers' own result, and bad input writes nothing.
"""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from rest_framework.renderers import JSONRenderer

from apps.customers.api import serializers as event_serializers
from apps.customers.api.serializers import (
    CustomerEventSerializer,
    CustomEventCreateSerializer,
    custom_event_input,
    custom_event_json,
)
from apps.customers.models import CustomerEvent, DomainEvent
from apps.platform.models import IdempotencyRecord
from apps.platform.services import api_token_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _serializer_only(monkeypatch) -> None:
    """The serializer reads every body (the path before the plain reading)."""

    def not_plain(data):
        raise event_serializers._NotPlain

    monkeypatch.setattr(event_serializers, "_custom_event_plain", not_plain)


BAD_BODIES = [
    {"customer_external_id": "c-1"},
    {"customer_external_id": "c-1", "name": ""},
    {"customer_external_id": "c-1", "name": "   "},
    {"customer_external_id": "c-1", "name": None},
    {"customer_external_id": "c-1", "name": "x" * 101},
    {"customer_external_id": "c-1", "name": ["bench"]},
    {"customer_external_id": "c-1", "name": "a\x00b"},
    {"customer_external_id": "c-1", "name": "a\ud800b"},
    {"customer_external_id": "nobody", "name": "bench"},
    {"customer_external_id": "", "name": "bench"},
    {"customer_external_id": None, "name": "bench"},
    {"customer_external_id": "c" * 129, "name": "bench"},
    {"customer_id": 999_999, "name": "bench"},
    {"customer_id": 0, "name": "bench"},
    {"customer_id": "abc", "name": "bench"},
    {"customer_id": 2**63, "name": "bench"},
    {"customer_id": None, "name": "bench"},
    {"name": "bench"},
    {"customer_external_id": "c-1", "customer_id": 1, "name": "bench"},
    {"customer_external_id": "c-1", "customer": None, "name": "bench"},
    {"customer": {"email": "x@example.com"}, "name": "bench"},
    {"customer_external_id": "c-1", "name": "bench", "properties": [1, 2]},
    {"customer_external_id": "c-1", "name": "bench", "properties": None},
    {"customer_external_id": "c-1", "name": "bench", "properties": "x"},
    {"customer_external_id": "c-1", "name": "bench", "occurred_at": "yesterday"},
    {"customer_external_id": "c-1", "name": "bench", "occurred_at": "1800-01-01T00:00:00Z"},
    {"customer_external_id": "c-1", "name": "bench", "occurred_at": None},
    {"customer_external_id": "c-1", "name": "bench", "external_id": "e" * 129},
    {"customer_external_id": "c-1", "name": "bench", "external_id": ""},
    {"customer_external_id": "c-1", "name": "bench", "external_id": {"no": "object"}},
    [{"customer_external_id": "c-1", "name": "bench"}],
    "bench",
    None,
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_bad_body_is_the_serializers_400_and_writes_nothing(api, monkeypatch, body):
    CustomerFactory(external_id="c-1")

    raw = json.dumps(body)  # (ASCII: a lone surrogate travels as its JSON escape)
    lean = api.post("/api/v1/events/", raw, content_type="application/json")
    _serializer_only(monkeypatch)
    before = api.post("/api/v1/events/", raw, content_type="application/json")

    assert lean.status_code == before.status_code == 400
    assert lean.content == before.content
    assert bool(lean.json()["errors"][0]["path"]) is isinstance(body, dict)  # (a body not an object: path "")
    assert (CustomerEvent.objects.count(), DomainEvent.objects.filter(name="event.custom").count()) == (0, 0)


def test_the_paths_of_a_bad_body_name_its_fields(api):
    CustomerFactory(external_id="c-1")
    body = {"customer_external_id": "c-1", "name": "", "occurred_at": "yesterday", "properties": [1]}

    response = api.post("/api/v1/events/", body, format="json")

    assert response.status_code == 400
    assert sorted(error["path"] for error in response.json()["errors"]) == ["name", "occurred_at", "properties"]


GOOD_BODIES = [
    {"customer_external_id": "c-1", "name": "bench"},
    {"customer_external_id": " c-1 ", "name": "  review_posted  ", "unknown": "ignored"},
    {"customer_external_id": "c-1", "name": 42},
    {"customer_external_id": "c-1", "name": "bewertung_ä", "external_id": None},
    {
        "customer_external_id": "c-1",
        "name": "review_posted",
        "external_id": "e-1",
        "properties": {"rating": 4.5, "nested": {"list": [1, "zwei", None, True]}, "text": "é\u2028"},
        "occurred_at": "2026-03-03T08:00:00.123456+02:00",
    },
    {"customer_external_id": "c-1", "name": "bench", "occurred_at": "2026-03-03"},
    {"customer_external_id": "c-1", "name": "bench", "occurred_at": "2026-03-03T08:00:00"},
    {"customer_id": "CUSTOMER_ID", "name": "bench", "properties": {}},
    {"customer_id": "STRING_ID", "name": "bench"},
]


def _with_id(body: dict, customer_id: int) -> dict:
    replaced = {"CUSTOMER_ID": customer_id, "STRING_ID": str(customer_id)}
    return {key: replaced.get(value, value) if isinstance(value, str) else value for key, value in body.items()}


@pytest.mark.parametrize("body", GOOD_BODIES)
def test_a_plain_body_reads_as_the_serializer_reads_it(body):
    customer = CustomerFactory(external_id="c-1")
    body = _with_id(body, customer.pk)
    serializer = CustomEventCreateSerializer(data=body)
    assert serializer.is_valid(), serializer.errors

    data, reference = custom_event_input(body)

    assert data == dict(serializer.validated_data)
    assert reference == serializer.customer_kwargs()
    assert reference["known"] == customer


def test_a_plain_body_is_read_without_the_serializer(api, monkeypatch):
    customer = CustomerFactory(external_id="c-1")

    def refused(*args, **kwargs):
        raise AssertionError("the serializer was built for a plain body")

    monkeypatch.setattr(event_serializers.CustomEventCreateSerializer, "__init__", refused)
    response = api.post("/api/v1/events/", {"customer_external_id": "c-1", "name": "bench"}, format="json")

    assert response.status_code == 201
    assert CustomerEvent.objects.get().customer == customer


def test_an_embedded_customer_still_goes_through_the_serializer_and_is_upserted(api):
    body = {"customer": {"external_id": "c-9", "email": "nine@example.com"}, "name": "bench"}

    response = api.post("/api/v1/events/", body, format="json")

    assert response.status_code == 201
    event = CustomerEvent.objects.get()
    assert (event.customer.external_id, event.customer.email) == ("c-9", "nine@example.com")
    assert response.json()["customer_external_id"] == "c-9"


@pytest.mark.parametrize("body", GOOD_BODIES)
def test_the_answer_is_the_serializers_bytes(api, body, settings):
    settings.TIME_ZONE = "Europe/Lisbon"  # the answer is written in the current time zone, as DRF writes it
    customer = CustomerFactory(external_id="c-1")

    response = api.post("/api/v1/events/", _with_id(body, customer.pk), format="json")

    assert response.status_code == 201
    event = CustomerEvent.objects.get()
    # the answer is written from the instance just saved: its properties in the order sent (jsonb reorders keys)
    event.properties = body.get("properties", {})
    assert response.content == JSONRenderer().render(CustomerEventSerializer(event).data)
    assert response.json()["id"] == event.pk


def test_the_answer_matches_the_serializer_for_stored_events():
    customer = CustomerFactory(external_id=None)
    events = [
        CustomerEvent.objects.create(customer=customer, name="a", external_id=None, properties={}),
        CustomerEvent.objects.create(
            customer=customer,
            name="b",
            external_id="e-2",
            properties={"a": [1.25, 1e16, -0.0]},
            occurred_at=dt.datetime(2031, 1, 2, 3, 4, 5, 6, tzinfo=ZoneInfo("America/New_York")),
        ),
    ]

    for event in events:
        stored = CustomerEvent.objects.get(pk=event.pk)
        assert custom_event_json(stored) == CustomerEventSerializer(stored).data
        assert JSONRenderer().render(custom_event_json(stored)) == JSONRenderer().render(
            CustomerEventSerializer(stored).data
        )


def test_a_resent_external_id_answers_the_stored_event_with_200(api):
    CustomerFactory(external_id="c-1")
    body = {"customer_external_id": "c-1", "name": "bench", "external_id": "e-1", "properties": {"n": 1}}

    first = api.post("/api/v1/events/", body, format="json")
    again = api.post("/api/v1/events/", {**body, "properties": {"n": 2}}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content
    assert CustomerEvent.objects.get().properties == {"n": 1}


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(bearer):
    client, _ = bearer
    CustomerFactory(external_id="c-1")
    body = {"customer_external_id": "c-1", "name": "bench"}

    first = client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replayed = client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    reused = client.post("/api/v1/events/", {**body, "name": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, replayed.status_code, reused.status_code) == (201, 201, 409)
    assert replayed.json() == first.json()  # (stored as jsonb on PostgreSQL: the same values, keys reordered)
    assert replayed["Idempotent-Replayed"] == "true"
    assert reused.json()["errors"][0]["path"] == "Idempotency-Key"
    assert CustomerEvent.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_a_token_without_the_ingest_scope_is_refused_and_writes_nothing(integrator):
    from rest_framework.test import APIClient

    _, raw = api_token_create(user=integrator, name="reader", scopes=["reports"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    CustomerFactory(external_id="c-1")

    response = client.post("/api/v1/events/", {"customer_external_id": "c-1", "name": "bench"}, format="json")

    assert response.status_code == 403
    assert CustomerEvent.objects.count() == 0
