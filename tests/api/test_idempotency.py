from decimal import Decimal

import pytest

from apps.customers.models import Customer, DomainEvent, Order
from apps.platform.models import IdempotencyRecord
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ORDER = {
    "external_id": None,
    "customer": {"external_id": "c-1", "email": "ana@example.com"},
    "currency": "EUR",
    "lines": [{"title": "Teddy", "quantity": 2, "unit_price": "10.00"}],
}


def test_replay_with_the_same_key_returns_the_first_response_without_a_second_order(api):
    first = api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert Customer.objects.get(external_id="c-1").total_spent == Decimal("20.00")
    assert DomainEvent.objects.filter(name="order.created").count() == 1


def test_same_key_with_a_different_body_is_refused_with_409_and_writes_nothing(api):
    api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = {**ORDER, "currency": "USD"}

    response = api.post("/api/v1/orders/", other, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"
    assert response.json()["errors"][0]["path"] == "Idempotency-Key"
    assert Order.objects.count() == 1


def test_same_key_on_another_path_is_refused(api):
    customer = CustomerFactory()
    api.post(f"/api/v1/customers/{customer.pk}/activate/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    response = api.post(f"/api/v1/customers/{customer.pk}/unsubscribe/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 409
    customer.refresh_from_db()
    assert customer.accepts_marketing is True


def test_a_failed_request_records_nothing_so_the_key_can_be_retried(api):
    bad = {**ORDER, "lines": [{"title": "Teddy", "quantity": 0, "unit_price": "10.00"}]}

    failed = api.post("/api/v1/orders/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    retried = api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    assert failed.status_code == 400
    assert retried.status_code == 201
    assert IdempotencyRecord.objects.filter(key="k-3").count() == 1
    assert Order.objects.count() == 1


def test_a_service_error_inside_the_handler_rolls_back_the_record_and_the_effect(api):
    customer = CustomerFactory(state="disabled")

    response = api.post(f"/api/v1/customers/{customer.pk}/activate/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "state"
    assert IdempotencyRecord.objects.count() == 0


def test_keys_are_per_user(api, django_user_model):
    from django.contrib.auth.models import Group
    from rest_framework.test import APIClient

    other_user = django_user_model.objects.create_user(username="other")
    other_user.groups.add(Group.objects.get(name="integration"))
    other = APIClient()
    other.force_authenticate(other_user)
    api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    response = other.post(
        "/api/v1/orders/", {**ORDER, "customer": {"external_id": "c-2"}}, format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )

    assert response.status_code == 201
    assert Order.objects.count() == 2


def test_without_a_key_every_post_is_processed(api):
    customer = CustomerFactory()
    body = {"customer_id": customer.pk, "name": "review_posted"}

    api.post("/api/v1/events/", body, format="json")
    api.post("/api/v1/events/", body, format="json")

    assert customer.events.count() == 2
    assert IdempotencyRecord.objects.count() == 0


def test_prune_idempotency_keys_deletes_only_records_past_the_retention(api):
    from datetime import UTC, datetime
    from io import StringIO

    import time_machine
    from django.core.management import call_command

    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="old")
    with time_machine.travel(datetime(2026, 1, 25, tzinfo=UTC), tick=False):
        api.post("/api/v1/orders/", {**ORDER, "currency": "USD"}, format="json", HTTP_IDEMPOTENCY_KEY="new")
        out = StringIO()
        call_command("prune_idempotency_keys", "--days", "10", stdout=out)

    assert out.getvalue().strip() == "Deleted 1 idempotency record(s) older than 10 days."
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_malformed_json_with_a_key_is_a_400_parse_error_and_records_nothing(api):
    response = api.post(
        "/api/v1/orders/", data='{"currency": ', content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-5"
    )

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert IdempotencyRecord.objects.count() == 0


def test_a_key_on_a_route_without_post_is_a_plain_405(api):
    order_customer = CustomerFactory()

    response = api.post(f"/api/v1/customers/{order_customer.pk}/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-6")

    assert response.status_code == 405
    assert IdempotencyRecord.objects.count() == 0


def test_a_replay_with_the_same_body_in_another_key_order_is_still_a_replay(api):
    first = api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-7")
    reordered = dict(reversed(list(ORDER.items())))

    second = api.post("/api/v1/orders/", reordered, format="json", HTTP_IDEMPOTENCY_KEY="k-7")

    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Order.objects.count() == 1
