"""
Order edits after creation (Shopify orders/updated + orders/edited, WooCommerce order.updated): the order takes the
shop's current lines and amounts once per version — summaries, points and workflows follow; replays and older
versions change nothing.
"""

from decimal import Decimal

import pytest

from apps.automations.models import WorkflowRun
from apps.connectors.models import WebhookDelivery
from apps.customers.models import Customer, DomainEvent, Order
from apps.loyalty.models import Balance, PointLot
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.connectors.support import fixture
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def ext(remote_id) -> str:
    return f"shopify:apple.myshopify.com:{remote_id}"


ORDER = ext(820982911946154508)


def open_order() -> dict:
    body = fixture("shopify", "orders/create")
    body.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "paid"})
    return body


def edited(*, updated_at: str, lounger: int, aviator: int, total: str) -> dict:
    """The order as Shopify sends it after an edit: lines with `current_quantity`, the new totals, a later version."""
    body = open_order()
    aviator_line, lounger_line = body["line_items"]
    aviator_line["current_quantity"], lounger_line["current_quantity"] = aviator, lounger
    body.update({"updated_at": updated_at, "total_price": total})
    body["total_price_set"]["shop_money"]["amount"] = total
    body["total_price_set"]["presentment_money"]["amount"] = total
    return body


def points(order: Order) -> int:
    return sum(lot.amount - lot.reversed_amount for lot in PointLot.objects.filter(order=order))


def test_an_edit_updates_the_order_summaries_points_and_fires_order_updated_once(shop, deliver):
    program_make()
    edits = active_workflow("Edited", "order.updated", [add_tags("Order edited")])
    deliver(shop, "orders/create", open_order())
    order = Order.objects.get(external_id=ORDER)
    customer = order.customer
    assert (order.total, customer.total_spent, points(order)) == (Decimal("254.98"), Decimal("254.98"), 244)

    # When the shop removes the lounger (159.99): orders/edited, then orders/updated with the edited order
    notice = deliver(shop, "orders/edited", fixture("shopify", "orders/edited"))
    down = edited(updated_at="2020-09-10T05:26:52-04:00", lounger=0, aviator=1, total="94.99")
    deliver(shop, "orders/updated", down)

    order.refresh_from_db()
    customer.refresh_from_db()
    assert notice.status_code == 200
    assert WebhookDelivery.objects.get(topic="orders/edited").outcome == {
        "order_id": order.pk,
        "edit": {"additions": 1, "removals": 1},
        "applied_by": "orders/updated",
    }
    assert (order.total, order.subtotal, order.total_shop, order.status) == (
        Decimal("94.99"),
        Decimal("89.99"),
        Decimal("94.99"),
        "paid",
    )
    assert list(order.lines.values_list("title", "quantity")) == [("Aviator sunglasses", 1)]
    assert (customer.total_spent, customer.orders_count) == (Decimal("94.99"), 1)
    assert points(order) == 84  # 89.99 - 5.00 discount, rounded down
    assert Balance.objects.get().active == 84
    assert WorkflowRun.objects.filter(workflow=edits).count() == 1
    assert DomainEvent.objects.filter(name="order.updated").count() == 1

    # A replay of the same version (another webhook id) and an older version change nothing more
    deliver(shop, "orders/updated", down)
    deliver(
        shop, "orders/updated", edited(updated_at="2020-09-10T05:00:00-04:00", lounger=1, aviator=1, total="254.98")
    )
    order.refresh_from_db()
    assert (order.total, points(order)) == (Decimal("94.99"), 84)
    assert DomainEvent.objects.filter(name="order.updated").count() == 1
    assert WebhookDelivery.objects.order_by("pk").last().outcome == {
        "order_id": order.pk,
        "skipped": "older than the version already applied",
    }

    # An edit up (two sunglasses) earns the difference as a new lot
    deliver(
        shop, "orders/updated", edited(updated_at="2020-09-10T06:00:00-04:00", lounger=0, aviator=2, total="184.98")
    )
    order.refresh_from_db()
    customer.refresh_from_db()
    assert (order.total, customer.total_spent, points(order)) == (Decimal("184.98"), Decimal("184.98"), 174)
    assert sorted(PointLot.objects.filter(order=order).values_list("source_key", flat=True)) == [
        f"order:{order.pk}:base",
        f"order:{order.pk}:base:edit:1",
    ]
    assert DomainEvent.objects.filter(name="order.updated").count() == 2


def test_a_refund_after_an_edit_takes_back_the_refunded_share_of_the_edited_points(shop, deliver):
    program_make()
    deliver(shop, "orders/create", open_order())
    deliver(shop, "orders/updated", edited(updated_at="2020-09-10T05:26:52-04:00", lounger=0, aviator=1, total="94.99"))
    order = Order.objects.get(external_id=ORDER)
    refund = fixture("shopify", "refunds/create")
    refund.update({"order_id": 820982911946154508, "id": 1})
    refund["transactions"] = [{"kind": "refund", "status": "success", "amount": "47.50"}]

    deliver(shop, "refunds/create", refund)

    order.refresh_from_db()
    assert (order.refunded_total, order.status) == (Decimal("47.50"), "partially_refunded")
    assert points(order) == 42  # 84 - floor(84 x 47.50 / 94.99) = 84 - 42
    assert Customer.objects.get().total_spent == Decimal("47.49")


def test_woocommerce_order_updated_with_new_lines_and_total_amends_the_order_once(woo_shop, deliver):
    deliver(woo_shop, "order.created", fixture("woocommerce", "order.created"))
    order = Order.objects.get()
    before = (order.total, order.lines.count())
    body = fixture("woocommerce", "order.updated")
    line = body["line_items"][0]
    line["quantity"] = line["quantity"] + 1
    line["subtotal"] = line["total"] = str(Decimal(line["subtotal"]) / (line["quantity"] - 1) * line["quantity"])
    body["total"] = str(Decimal(body["total"]) + Decimal(line["subtotal"]) / line["quantity"])
    body["date_modified_gmt"] = "2030-01-01T00:00:00"
    body["date_modified"] = "2030-01-01T00:00:00"

    deliver(woo_shop, "order.updated", body)
    deliver(woo_shop, "order.updated", body)  # the same version again

    order.refresh_from_db()
    assert order.total == Decimal(body["total"])
    assert order.total != before[0] and order.lines.count() == before[1]
    assert order.lines.order_by("pk").first().quantity == line["quantity"]
    assert order.customer.total_spent == order.total
    assert DomainEvent.objects.filter(name="order.updated").count() == 1
