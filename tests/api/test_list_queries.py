"""Every list endpoint runs a fixed number of queries however many rows it returns (no N+1)."""

import pytest

from apps.customers import services
from apps.tagging.services import product_tags_set, tags_add
from tests.factories import CustomerFactory, ProductFactory, StoreFactory, make_order

pytestmark = pytest.mark.django_db


def _populate(rows: int) -> None:
    for index in range(rows):
        customer = CustomerFactory()
        tags_add(customer=customer, names=["VIP", f"tag-{index}"])
        product = ProductFactory()
        product_tags_set(product=product, names=["Kids & Baby", f"ptag-{index}"])
        order = make_order(customer, total="40.00", products=[product, ProductFactory()], external_id=f"o-{index}")
        services.refund_create(order=order, amount="5.00")
        lines = [{"product_id": product.pk, "title": "x", "quantity": 1, "unit_price": "1.00"}]
        services.draft_order_create(customer=customer, currency="EUR", lines=lines)
        services.cart_upsert(customer=customer, currency="EUR", lines=lines, external_id=f"cart-{index}")
        services.custom_event_record(customer=customer, name="review_posted")
        StoreFactory()


# (url, queries): 1 COUNT for the paginator + 1 SELECT (+ 1 per prefetched relation).
LISTS = [
    ("/api/v1/customers/", 5),  # count, customers, customer_tags, tags, consents
    ("/api/v1/products/", 4),  # count, products, product_tags, tags
    ("/api/v1/orders/", 4),  # count, orders+customer+store, lines+product, refunds
    ("/api/v1/draft-orders/", 2),
    ("/api/v1/carts/", 2),
    ("/api/v1/events/", 2),
    ("/api/v1/stores/", 2),
    ("/api/v1/tags/", 2),
]


@pytest.mark.parametrize(("url", "queries"), LISTS)
def test_list_query_count_is_fixed(api, django_assert_num_queries, url, queries):
    _populate(3)
    with django_assert_num_queries(queries):
        small = api.get(url)
    _populate(4)
    with django_assert_num_queries(queries):
        large = api.get(url)

    assert small.status_code == large.status_code == 200
    assert large.json()["count"] > small.json()["count"] >= 3
