"""Consents in the customers API; the suppression list as `/api/v1/suppressions/` (permission and scope)."""

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from rest_framework.test import APIClient

from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent, Suppression
from apps.customers.models import Customer, DomainEvent
from apps.platform.models import AuditEntry
from apps.platform.services import api_token_create
from tests.api.conftest import api, integrator  # noqa: F401  (fixtures)
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_create_with_consents_records_them_with_their_source(api):  # noqa: F811
    body = {
        "external_id": "c-1",
        "email": "ana@example.com",
        "phone": "+351911111111",
        "consents": [
            {"channel": "email", "purpose": "marketing", "status": "granted", "source": "form:summer"},
            {"channel": "sms", "status": "granted"},
        ],
    }

    response = api.post("/api/v1/customers/", body, format="json")

    assert response.status_code == 201
    got = {(c["channel"], c["purpose"]): (c["status"], c["source"]) for c in response.json()["consents"]}
    assert got == {("email", "marketing"): ("granted", "form:summer"), ("sms", "marketing"): ("granted", "api")}
    assert response.json()["accepts_marketing"] is True
    customer = Customer.objects.get(external_id="c-1")
    assert consent.allows(customer, channel="sms", purpose="marketing") is None


def test_pending_asks_for_double_opt_in_and_only_the_click_grants(api, django_capture_on_commit_callbacks):  # noqa: F811
    body = {"email": "bo@example.com", "consents": [{"channel": "email", "status": "pending", "source": "form:nl"}]}

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/customers/", body, format="json")

    assert response.status_code == 201
    assert response.json()["consents"][0]["status"] == "pending"
    assert response.json()["accepts_marketing"] is False
    assert [message.to for message in mail.outbox] == [["bo@example.com"]]
    customer = Customer.objects.get(pk=response.json()["id"])
    assert consent.allows(customer, channel="email", purpose="marketing") == "unconfirmed"


def test_patch_withdraws_a_consent_and_fires_unsubscribed_once(api):  # noqa: F811
    customer = CustomerFactory(accepts_marketing=True)

    for _ in range(2):
        response = api.patch(
            f"/api/v1/customers/{customer.pk}/",
            {"consents": [{"channel": "email", "purpose": "marketing", "status": "withdrawn"}]},
            format="json",
        )

    assert response.status_code == 200
    assert response.json()["accepts_marketing"] is False
    assert response.json()["consents"][0]["status"] == "withdrawn"
    assert DomainEvent.objects.filter(customer=customer, name="customer.unsubscribed").count() == 1


@pytest.mark.parametrize(
    ("consents", "path"),
    [
        ([{"channel": "pigeon", "status": "granted"}], "consents[0].channel"),
        ([{"channel": "email", "status": "maybe"}], "consents[0].status"),
        ([{"channel": "email", "status": "granted", "source": "Robert'); DROP"}], "consents[0].source"),
        ([{"channel": "in_app", "status": "pending"}], "consents[0].status"),
        (
            [{"channel": "email", "status": "granted"}, {"channel": "email", "status": "withdrawn"}],
            "consents[1].channel",
        ),
        ([{"channel": "email", "status": "granted"}] * 7, "consents"),
        ("granted", "consents"),
    ],
)
def test_bad_consents_are_a_400_with_the_path_and_write_nothing(api, consents, path):  # noqa: F811
    response = api.post("/api/v1/customers/", {"external_id": "c-2", "consents": consents}, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == [path]
    assert Customer.objects.count() == 0 and Consent.objects.count() == 0


def test_embedded_customers_in_orders_take_no_consents(api):  # noqa: F811
    body = {
        "external_id": "o-1",
        "currency": "USD",
        "customer": {"external_id": "c-3", "consents": [{"channel": "email", "status": "granted"}]},
        "lines": [{"title": "Mug", "quantity": 1, "unit_price": "5.00"}],
    }

    response = api.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 201
    assert Consent.objects.count() == 0


def test_suppressions_list_create_filter_and_delete(api):  # noqa: F811
    created = api.post(
        "/api/v1/suppressions/",
        {"address": "Ana@Example.com", "channel": "email", "reason": "complaint"},
        format="json",
    )
    again = api.post("/api/v1/suppressions/", {"address": "ana@example.com", "channel": "email"}, format="json")
    api.post("/api/v1/suppressions/", {"address": "+15550001", "channel": "sms"}, format="json")

    assert created.status_code == 201 and again.status_code == 200
    assert created.json()["address"] == "ana@example.com" and created.json()["source"] == "api"
    listed = api.get("/api/v1/suppressions/?channel=email")
    assert [row["address"] for row in listed.json()["results"]] == ["ana@example.com"]
    assert api.delete(f"/api/v1/suppressions/{created.json()['id']}/").status_code == 204
    assert list(Suppression.objects.values_list("address", flat=True)) == ["+15550001"]
    assert AuditEntry.objects.filter(object_type="customers.suppression", action="deleted").count() == 1


def test_bad_suppression_input_is_a_400_with_the_field(api):  # noqa: F811
    for body, path in (
        ({"address": "not-an-email", "channel": "email"}, "address"),
        ({"address": "a@example.com", "channel": "in_app"}, "channel"),
        ({"address": "a@example.com", "channel": "email", "reason": "bored"}, "reason"),
        ({"address": "a" * 300 + "@example.com", "channel": "email"}, "address"),
    ):
        response = api.post("/api/v1/suppressions/", body, format="json")
        assert response.status_code == 400, body
        assert [error["path"] for error in response.json()["errors"]] == [path]
    assert Suppression.objects.count() == 0


def test_suppressions_refuse_a_user_without_the_permission_and_change_nothing():
    user = UserFactory(username="analyst", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="analyst"))
    client = APIClient()
    client.force_authenticate(user)
    row = consent.suppression_add(address="ana@example.com", channel="email", reason="manual")

    assert client.get("/api/v1/suppressions/").status_code == 200  # analysts read
    assert (
        client.post(
            "/api/v1/suppressions/", {"address": "b@example.com", "channel": "email"}, format="json"
        ).status_code
        == 403
    )
    assert client.delete(f"/api/v1/suppressions/{row.pk}/").status_code == 403
    assert list(Suppression.objects.values_list("address", flat=True)) == ["ana@example.com"]


def test_suppressions_refuse_a_token_without_the_ingest_scope(integrator):  # noqa: F811
    _token, raw = api_token_create(user=integrator, name="loyalty only", scopes=["loyalty:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.post("/api/v1/suppressions/", {"address": "b@example.com", "channel": "email"}, format="json")

    assert response.status_code == 403
    assert Suppression.objects.count() == 0


def test_the_suppression_list_has_a_fixed_query_count(api, django_assert_num_queries):  # noqa: F811
    for index in range(3):
        consent.suppression_add(address=f"a{index}@example.com", channel="email", reason="manual")
    with django_assert_num_queries(2):
        small = api.get("/api/v1/suppressions/")
    for index in range(5):
        consent.suppression_add(address=f"b{index}@example.com", channel="email", reason="manual")
    with django_assert_num_queries(2):
        large = api.get("/api/v1/suppressions/")
    assert (small.json()["count"], large.json()["count"]) == (3, 8)
