"""/api/v1/deliveries/: read-only, needs `view_delivery` and, for a token, the scope messaging (or reports)."""

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from apps.customers.messaging import services
from apps.customers.messaging.models import Delivery
from apps.customers.messaging.services import Content
from apps.platform.services import api_token_create
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _deliveries(count: int) -> None:
    for _ in range(count):
        customer = CustomerFactory()
        services.message_send(
            key=f"k{customer.pk}", channel="email", purpose="marketing", customer=customer, content=Content(subject="s")
        )


def _client(scopes: list[str], *, role: str = "analyst") -> APIClient:
    user = UserFactory(is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    _, raw = api_token_create(user=user, name="t", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_messaging_token_lists_and_filters_deliveries():
    _deliveries(2)
    suppressed = CustomerFactory(accepts_marketing=False)
    services.message_send(key="x", channel="email", purpose="marketing", customer=suppressed, content=Content())

    client = _client(["messaging"])
    listed = client.get("/api/v1/deliveries/")
    filtered = client.get("/api/v1/deliveries/", {"status": "suppressed"})

    assert listed.status_code == 200
    assert listed.json()["count"] == 3
    [row] = filtered.json()["results"]
    assert (row["customer_id"], row["reason"]) == (suppressed.pk, "no_consent")


def test_a_token_without_the_scope_is_refused():
    _deliveries(1)

    response = _client(["ingest"], role="integration").get("/api/v1/deliveries/")

    assert response.status_code == 403
    assert "messaging" in response.json()["message"]


def test_a_user_without_view_delivery_is_refused():
    user = UserFactory(is_staff=False, is_superuser=False)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    _, raw = api_token_create(user=user, name="t", scopes=["messaging"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert client.get("/api/v1/deliveries/").status_code == 403


def test_deliveries_are_read_only_even_for_the_admin_scope():
    _deliveries(1)
    before = list(Delivery.objects.values())
    client = _client(["admin"], role="integration")  # integration holds customers.* (add/change/delete)
    delivery_id = before[0]["id"]

    created = client.post("/api/v1/deliveries/", {"channel": "email"}, format="json")
    changed = client.patch(f"/api/v1/deliveries/{delivery_id}/", {"status": "sent"}, format="json")
    deleted = client.delete(f"/api/v1/deliveries/{delivery_id}/")

    assert (created.status_code, changed.status_code, deleted.status_code) == (405, 405, 405)
    assert list(Delivery.objects.values()) == before


def test_a_bad_filter_is_a_400_naming_the_field():
    response = _client(["messaging"]).get("/api/v1/deliveries/", {"status": "nope", "created_after": "x"})

    assert response.status_code == 400
    paths = sorted(error["path"] for error in response.json()["errors"])
    assert paths == ["created_after", "status"]


def test_the_list_runs_a_fixed_number_of_queries(django_assert_num_queries):
    user = UserFactory(is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="analyst"))
    user.get_all_permissions()
    client = APIClient()
    client.force_authenticate(user)
    _deliveries(2)
    with django_assert_num_queries(2):
        small = client.get("/api/v1/deliveries/")
    _deliveries(5)
    with django_assert_num_queries(2):
        large = client.get("/api/v1/deliveries/")
    assert (small.json()["count"], large.json()["count"]) == (2, 7)
