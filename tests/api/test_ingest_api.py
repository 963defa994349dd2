from decimal import Decimal

import pytest

from apps.customers.models import Cart, CustomerEvent, DomainEvent, DraftOrder, Product, Store
from apps.tagging.models import ProductTag, Tag
from apps.tagging.services import tags_add
from tests.factories import CustomerFactory, ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db


def test_draft_order_is_created_once_per_external_id(api):
    customer = CustomerFactory(external_id="c-1")
    product = ProductFactory(external_id="sku-1", title="Mug")
    body = {
        "external_id": "d-1",
        "customer_external_id": "c-1",
        "currency": "eur",
        "lines": [{"product_external_id": "sku-1", "quantity": 3, "unit_price": "4.00"}],
    }

    first = api.post("/api/v1/draft-orders/", body, format="json")
    again = api.post("/api/v1/draft-orders/", body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    draft = DraftOrder.objects.get()
    assert (draft.customer, draft.currency, draft.total) == (customer, "EUR", Decimal("12.00"))
    assert draft.lines == [{"product_id": product.pk, "title": "Mug", "quantity": 3, "unit_price": "4.00"}]
    assert DomainEvent.objects.filter(name="draft_order.created").count() == 1


def test_cart_is_upserted_by_external_id_and_announced_when_abandoned(api):
    CustomerFactory(external_id="c-1")
    body = {
        "external_id": "chk-1",
        "customer_external_id": "c-1",
        "currency": "EUR",
        "lines": [{"title": "Mug", "quantity": 1, "unit_price": "4.00"}],
    }

    created = api.post("/api/v1/carts/", body, format="json")
    abandoned = api.post("/api/v1/carts/", {**body, "abandoned_at": "2026-03-02T18:00:00Z"}, format="json")

    assert (created.status_code, abandoned.status_code) == (201, 200)
    assert abandoned.json()["id"] == created.json()["id"]
    assert Cart.objects.get().abandoned_at is not None
    assert DomainEvent.objects.filter(name="cart.abandoned").count() == 1


def test_cart_without_external_id_is_refused(api):
    CustomerFactory(external_id="c-1")

    response = api.post(
        "/api/v1/carts/", {"customer_external_id": "c-1", "currency": "EUR", "lines": []}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "external_id"
    assert Cart.objects.count() == 0


def test_custom_event_is_recorded_once_per_external_id(api):
    customer = CustomerFactory(external_id="c-1")
    body = {"external_id": "e-1", "customer_external_id": "c-1", "name": "review_posted", "properties": {"rating": 5}}

    first = api.post("/api/v1/events/", body, format="json")
    again = api.post("/api/v1/events/", body, format="json")
    listed = api.get("/api/v1/events/?name=review_posted")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    event = CustomerEvent.objects.get()
    assert (event.customer, event.name, event.properties) == (customer, "review_posted", {"rating": 5})
    assert [row["external_id"] for row in listed.json()["results"]] == ["e-1"]


def test_custom_event_with_bad_properties_is_refused(api):
    CustomerFactory(external_id="c-1")

    response = api.post(
        "/api/v1/events/", {"customer_external_id": "c-1", "name": "x", "properties": [1, 2]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "properties"
    assert CustomerEvent.objects.count() == 0


def test_location_ping_returns_the_stores_in_range_nearest_first(api):
    CustomerFactory(external_id="c-1")
    near = StoreFactory(code="near", latitude=52.5200, longitude=13.4050, radius_m=300)
    StoreFactory(code="far", latitude=52.5300, longitude=13.4050, radius_m=300)  # ~1.1 km away

    response = api.post(
        "/api/v1/locations/", {"customer_external_id": "c-1", "latitude": 52.5201, "longitude": 13.4050}, format="json"
    )

    assert response.status_code == 200
    matches = response.json()["matches"]
    assert [match["store"]["code"] for match in matches] == ["near"]
    assert matches[0]["distance_m"] == 11.1
    event = DomainEvent.objects.get(name="customer.near_store")
    assert event.payload["store_id"] == near.pk


def test_location_ping_out_of_range_is_refused(api):
    CustomerFactory(external_id="c-1")

    response = api.post(
        "/api/v1/locations/", {"customer_external_id": "c-1", "latitude": 91, "longitude": 0}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "latitude"


def test_store_post_upserts_by_code(api):
    body = {"code": "lisbon", "name": "Lisbon", "latitude": 38.71, "longitude": -9.14, "radius_m": 150}

    created = api.post("/api/v1/stores/", body, format="json")
    updated = api.post("/api/v1/stores/", {**body, "name": "Lisbon Chiado"}, format="json")

    assert (created.status_code, updated.status_code) == (201, 200)
    assert list(Store.objects.values_list("name", flat=True)) == ["Lisbon Chiado"]


def test_product_post_upserts_by_external_id_and_sets_its_tags(api):
    body = {"external_id": "sku-1", "title": "Teddy", "price": "19.90", "tags": ["Kids & Baby", "Gifts"]}

    created = api.post("/api/v1/products/", body, format="json")
    updated = api.post("/api/v1/products/", {**body, "title": "Teddy bear", "tags": ["kids & baby"]}, format="json")

    assert (created.status_code, updated.status_code) == (201, 200)
    assert updated.json()["tags"] == ["Kids & Baby"]
    product = Product.objects.get()
    assert (product.title, product.price) == ("Teddy bear", Decimal("19.90"))
    assert ProductTag.objects.count() == 1
    assert [row["external_id"] for row in api.get("/api/v1/products/?tag=KIDS %26 BABY").json()["results"]] == ["sku-1"]


def test_tags_list_counts_customers_and_create_returns_existing_names(api):
    tags_add(customer=CustomerFactory(), names=["VIP"])
    tags_add(customer=CustomerFactory(), names=["VIP", "Parent"])

    existing = api.post("/api/v1/tags/", {"name": "vip"}, format="json")
    created = api.post("/api/v1/tags/", {"name": "Newsletter", "description": "Signed up"}, format="json")
    listed = api.get("/api/v1/tags/")

    assert (existing.status_code, created.status_code) == (200, 201)
    assert [(row["name"], row["customer_count"]) for row in listed.json()["results"]] == [
        ("Newsletter", 0),
        ("Parent", 1),
        ("VIP", 2),
    ]
    assert Tag.objects.count() == 3


def test_product_patch_changes_only_the_fields_sent_and_put_replaces_tags(api):
    created = api.post(
        "/api/v1/products/",
        {"external_id": "sku-9", "title": "Mug", "price": "8.00", "tags": ["Kitchen"]},
        format="json",
    ).json()

    patched = api.patch(f"/api/v1/products/{created['id']}/", {"price": "9.50"}, format="json")
    replaced = api.put(
        f"/api/v1/products/{created['id']}/", {"title": "Big mug", "price": "12.00", "tags": ["Gifts"]}, format="json"
    )

    assert patched.status_code == 200
    assert (patched.json()["title"], patched.json()["price"], patched.json()["tags"]) == ("Mug", "9.50", ["Kitchen"])
    assert replaced.status_code == 200
    product = Product.objects.get()
    assert (product.title, product.price, product.external_id) == ("Big mug", Decimal("12.00"), "sku-9")
    assert [row.tag.name for row in ProductTag.objects.select_related("tag")] == ["Gifts"]


def test_product_patch_with_a_taken_external_id_is_refused_with_its_path_and_changes_nothing(api):
    api.post("/api/v1/products/", {"external_id": "a", "title": "A"}, format="json")
    second = api.post("/api/v1/products/", {"external_id": "b", "title": "B", "price": "3.00"}, format="json").json()

    response = api.patch(f"/api/v1/products/{second['id']}/", {"external_id": "a", "price": "4.00"}, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["external_id"]
    product = Product.objects.get(pk=second["id"])
    assert (product.external_id, product.price) == ("b", Decimal("3.00"))
