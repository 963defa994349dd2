from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.customers import services
from apps.customers.models import Customer, DomainEvent, Store
from apps.platform import services as platform_services
from apps.platform.authentication import token_digest
from apps.platform.models import ApiToken
from loyalty_site.lib.errors import ConflictError
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def test_customer_resolve_by_id_external_id_or_embedded_upsert():
    known = CustomerFactory(external_id="c-1")

    by_id = services.customer_resolve(customer_id=known.pk)
    by_external = services.customer_resolve(customer_external_id="c-1")
    embedded = services.customer_resolve(customer_fields={"external_id": "c-2", "email": "B@Example.com"})

    assert by_id == by_external == known
    assert (embedded.external_id, embedded.email) == ("c-2", "b@example.com")


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({}, "customer"),
        ({"customer_id": 1, "customer_external_id": "x"}, "customer"),
        ({"customer_id": 999999}, "customer_id"),
        ({"customer_external_id": "nobody"}, "customer_external_id"),
        ({"customer_fields": {"email": "x@example.com"}}, "customer.external_id"),
    ],
)
def test_customer_resolve_refuses_bad_references_and_writes_nothing(kwargs, path):
    with pytest.raises(ValidationError) as error:
        services.customer_resolve(**kwargs)

    assert list(error.value.message_dict) == [path]
    assert Customer.objects.count() == 0


def test_customer_upsert_updates_without_a_second_registration():
    services.customer_upsert(external_id="c-1", first_name="A")
    customer, created = services.customer_upsert(external_id="c-1", first_name="B")

    assert (created, customer.first_name) == (False, "B")
    assert DomainEvent.objects.filter(name="customer.registered").count() == 1


def test_unknown_customer_fields_are_refused():
    with pytest.raises(ValidationError) as error:
        services.customer_create(external_id="c-1", favourite_colour="red")

    assert list(error.value.message_dict) == ["favourite_colour"]
    assert Customer.objects.count() == 0


def test_customer_delete_refuses_a_customer_with_orders():
    customer = CustomerFactory()
    make_order(customer)

    with pytest.raises(ConflictError):
        services.customer_delete(customer=customer)

    assert Customer.objects.filter(pk=customer.pk).exists()


def test_store_upsert_by_code_and_validation():
    store, created = services.store_upsert(code="b", name="Berlin", latitude=52.5, longitude=13.4)
    again, created_again = services.store_upsert(code="b", name="Berlin Mitte", latitude=52.5, longitude=13.4)

    assert (created, created_again) == (True, False)
    assert again.pk == store.pk
    with pytest.raises(ValidationError):
        services.store_upsert(code="x", name="Nowhere", latitude=100, longitude=0)
    assert list(Store.objects.values_list("name", flat=True)) == ["Berlin Mitte"]


def test_api_tokens_are_stored_as_digests_and_revoked_once():
    user = UserFactory()

    token, raw = platform_services.api_token_create(user=user, name="shop", scopes=["ingest"])
    revoked = platform_services.api_token_revoke(token=token)
    revoked_at = revoked.revoked_at
    platform_services.api_token_revoke(token=token)

    stored = ApiToken.objects.get()
    assert stored.digest == token_digest(raw)
    assert stored.prefix == raw[:12]
    assert stored.revoked_at == revoked_at


def test_customer_summary_recompute_repairs_drifted_figures():
    customer = CustomerFactory()
    make_order(customer, total="40.00")
    Customer.objects.filter(pk=customer.pk).update(orders_count=7, total_spent=Decimal("1.00"))

    services.customer_summary_recompute(customer=customer)

    assert (customer.orders_count, customer.total_spent) == (1, Decimal("40.00"))
