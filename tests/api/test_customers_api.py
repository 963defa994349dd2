import pytest

from apps.customers.models import Customer, DomainEvent
from apps.tagging.models import CustomerTag, TagAudit
from apps.tagging.services import tags_add
from tests.factories import CustomerFactory, make_order

pytestmark = pytest.mark.django_db


def test_create_a_customer_then_resend_with_the_same_external_id_updates_it(api):
    body = {"external_id": "c-1", "email": "Ana@Example.com", "country": "pt", "attributes": {"weather_zone": "warm"}}

    created = api.post("/api/v1/customers/", body, format="json")
    updated = api.post("/api/v1/customers/", {"external_id": "c-1", "first_name": "Ana"}, format="json")

    assert created.status_code == 201
    assert created.json()["email"] == "ana@example.com"
    assert created.json()["country"] == "PT"
    assert created.json()["state"] == "registered"
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["first_name"] == "Ana"
    assert Customer.objects.count() == 1
    assert DomainEvent.objects.filter(name="customer.registered").count() == 1


def test_bad_customer_input_is_a_400_with_paths_and_writes_nothing(api):
    response = api.post("/api/v1/customers/", {"email": "not-an-email", "attributes": [1]}, format="json")

    assert response.status_code == 400
    assert sorted(error["path"] for error in response.json()["errors"]) == ["attributes", "email"]
    assert Customer.objects.count() == 0


def test_patch_updates_profile_fields_and_refuses_to_change_the_external_id(api):
    customer = CustomerFactory(external_id="c-9", first_name="Old")

    ok = api.patch(f"/api/v1/customers/{customer.pk}/", {"first_name": "New"}, format="json")
    refused = api.patch(f"/api/v1/customers/{customer.pk}/", {"external_id": "other"}, format="json")

    assert ok.status_code == 200
    assert ok.json()["first_name"] == "New"
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["path"] == "external_id"
    customer.refresh_from_db()
    assert customer.external_id == "c-9"


def test_delete_refuses_a_customer_with_orders(api):
    with_orders = CustomerFactory()
    make_order(with_orders)
    without = CustomerFactory()

    refused = api.delete(f"/api/v1/customers/{with_orders.pk}/")
    deleted = api.delete(f"/api/v1/customers/{without.pk}/")

    assert refused.status_code == 409
    assert refused.json()["error"] == "customer_has_orders"
    assert deleted.status_code == 204
    assert list(Customer.objects.values_list("pk", flat=True)) == [with_orders.pk]


def test_filters_by_external_id_email_tag_country_and_state(api):
    anna = CustomerFactory(external_id="a", email="anna@example.com", country="DE", state="guest")
    bob = CustomerFactory(external_id="b", email="bob@example.com", country="US")
    tags_add(customer=anna, names=["VIP", "Parent"])
    tags_add(customer=bob, names=["parent"])

    def ids(query: str) -> list[str]:
        return [row["external_id"] for row in api.get(f"/api/v1/customers/?{query}").json()["results"]]

    assert ids("external_id=a") == ["a"]
    assert ids("email=BOB@example.com") == ["b"]
    assert ids("tag=vip") == ["a"]
    assert ids("tag=PARENT") == ["b", "a"]
    assert ids("country=us") == ["b"]
    assert ids("state=guest") == ["a"]
    assert api.get("/api/v1/customers/?state=nonsense").status_code == 400


def test_add_and_remove_tags_go_through_the_audited_services(api, integrator):
    customer = CustomerFactory()

    added = api.post(f"/api/v1/customers/{customer.pk}/add_tags/", {"tags": ["VIP", " vip ", "Parent"]}, format="json")
    removed = api.post(f"/api/v1/customers/{customer.pk}/remove_tags/", {"tags": ["parent"]}, format="json")

    assert added.status_code == 200
    assert added.json()["tags"] == ["Parent", "VIP"]
    assert removed.json()["tags"] == ["VIP"]
    row = CustomerTag.objects.get(customer=customer)
    assert (row.tag.name, row.source, row.added_by) == ("VIP", "api", integrator)
    assert sorted(TagAudit.objects.values_list("tag_name", "action", "source")) == [
        ("Parent", "added", "api"),
        ("Parent", "removed", "api"),
        ("VIP", "added", "api"),
    ]


def test_add_tags_with_an_empty_list_is_refused(api):
    customer = CustomerFactory()

    response = api.post(f"/api/v1/customers/{customer.pk}/add_tags/", {"tags": []}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "tags"
    assert CustomerTag.objects.count() == 0


def test_activate_and_unsubscribe_actions(api):
    customer = CustomerFactory(state="invited")

    activated = api.post(f"/api/v1/customers/{customer.pk}/activate/", format="json")
    unsubscribed = api.post(f"/api/v1/customers/{customer.pk}/unsubscribe/", format="json")
    again = api.post(f"/api/v1/customers/{customer.pk}/unsubscribe/", format="json")

    assert activated.json()["state"] == "registered"
    assert unsubscribed.json()["accepts_marketing"] is False
    assert unsubscribed.json()["unsubscribed_at"] is not None
    assert again.json()["unsubscribed_at"] == unsubscribed.json()["unsubscribed_at"]
    assert DomainEvent.objects.filter(name="customer.unsubscribed").count() == 1
    assert DomainEvent.objects.filter(name="customer.activated").count() == 1


def test_unknown_customer_is_a_404_json(api):
    response = api.post("/api/v1/customers/999999/activate/", format="json")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_customer_language_is_accepted_normalised_and_a_bad_tag_is_a_400(api):
    created = api.post("/api/v1/customers/", {"external_id": "lang-1", "language": "pt_BR"}, format="json")
    bad = api.post("/api/v1/customers/", {"external_id": "lang-2", "language": "not a tag"}, format="json")

    assert created.status_code == 201
    assert created.json()["language"] == "pt-br"
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["path"] == "language"
    assert not Customer.objects.filter(external_id="lang-2").exists()
