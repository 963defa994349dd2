"""Tags and loyalty state back to the shop, against a fake Admin API on 127.0.0.1 (429, 5xx, userErrors)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.automations.models import WorkflowRun
from apps.connectors.models import Push, RemoteRecord
from apps.connectors.services.connections import connection_update
from apps.connectors.services.push import pushes_collect, pushes_send_due
from apps.customers.models import Customer, DomainEvent
from apps.loyalty import services as loyalty
from apps.loyalty.models import Membership, Tier
from apps.tagging.services import tags_add, tags_remove
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.connectors.support import fixture
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

TOKEN = "shpat_0123456789"


def open_order() -> dict:
    body = fixture("shopify", "orders/create")
    body.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "paid"})
    return body


@pytest.fixture
def pushing(shop, fake_shop):
    return connection_update(connection=shop, push_enabled=True, api_token=TOKEN, api_base_url=fake_shop.url)


def collect_and_send(connection, now=None):
    now = now or timezone.now() + timedelta(seconds=1)
    pushes_collect(connection=connection, now=now)
    return pushes_send_due(now=now)


def test_a_workflow_tag_goes_to_shopify_with_tags_add_and_its_echo_triggers_nothing(pushing, fake_shop, deliver):
    active_workflow("VIP", "order.created", [add_tags("VIP")])
    active_workflow("On VIP", "customer.tag_added", [add_tags("Tagged")])
    deliver(pushing, "orders/create", open_order())
    customer = Customer.objects.get(external_id="shopify:apple.myshopify.com:115310627314723954")

    assert collect_and_send(pushing) == {"sent": 2}  # VIP, then Tagged (both written by workflows)
    first = fake_shop.requests[0]
    assert (first["method"], first["path"]) == ("POST", "/admin/api/2025-01/graphql.json")
    assert first["headers"]["x-shopify-access-token"] == TOKEN
    assert "tagsAdd(id: $id, tags: $tags)" in first["json"]["query"]
    assert first["json"]["variables"] == {"id": "gid://shopify/Customer/115310627314723954", "tags": ["VIP"]}
    assert [r["json"]["variables"]["tags"] for r in fake_shop.requests] == [["VIP"], ["Tagged"]]
    assert RemoteRecord.objects.get(kind="customer").remote_tags == ["VIP", "Tagged"]

    events_before = DomainEvent.objects.count()
    runs_before = WorkflowRun.objects.count()
    echo = fixture("shopify", "orders/create")["customer"]
    echo.update({"tags": "VIP, Tagged", "updated_at": "2026-01-01T00:00:00-05:00"})
    deliver(pushing, "customers/update", echo)
    assert DomainEvent.objects.count() == events_before  # no tag_added, nothing to trigger
    assert WorkflowRun.objects.count() == runs_before
    assert collect_and_send(pushing, timezone.now() + timedelta(seconds=2)) == {}  # and nothing to push back
    assert sorted(customer.customer_tags.values_list("tag__name", flat=True)) == ["Tagged", "VIP"]


def test_a_tag_removed_by_a_workflow_is_removed_in_the_shop(pushing, fake_shop, deliver):
    body = fixture("shopify", "customers/create")
    body["tags"] = "Prospect"
    deliver(pushing, "customers/create", body)
    customer = Customer.objects.get()
    tags_remove(customer=customer, names=["Prospect"], source="workflow", source_ref="workflow_run:7")
    assert collect_and_send(pushing) == {"sent": 1}
    request = fake_shop.requests[0]["json"]
    assert "tagsRemove" in request["query"] and request["variables"]["tags"] == ["Prospect"]
    assert RemoteRecord.objects.get().remote_tags == []


def test_tags_the_shop_sent_are_not_pushed_back(pushing, fake_shop, deliver):
    body = fixture("shopify", "customers/create")
    body["tags"] = "From the shop"
    deliver(pushing, "customers/create", body)
    assert collect_and_send(pushing) == {}
    assert fake_shop.requests == []


def test_429_and_5xx_are_retried_with_back_off_then_sent(pushing, fake_shop, deliver):
    active_workflow("VIP", "order.created", [add_tags("VIP")])
    deliver(pushing, "orders/create", open_order())
    fake_shop.answers = [(429, {"errors": "Throttled"}, {"Retry-After": "120"}), (503, {}, {})]
    now = timezone.now() + timedelta(seconds=1)

    assert collect_and_send(pushing, now) == {"pending": 1}
    push = Push.objects.get()
    assert (push.attempts, push.last_error) == (1, "the shop answered 429")
    assert push.next_attempt_at == now + timedelta(seconds=120)  # Retry-After is longer than the back-off

    assert pushes_send_due(now=now + timedelta(seconds=60)) == {}  # not due yet
    assert pushes_send_due(now=now + timedelta(seconds=121)) == {"pending": 1}
    push.refresh_from_db()
    assert (push.attempts, push.last_error) == (2, "the shop answered 503")
    assert push.next_attempt_at == now + timedelta(seconds=121 + 60)

    assert pushes_send_due(now=now + timedelta(seconds=200)) == {"sent": 1}
    push.refresh_from_db()
    assert (push.status, push.attempts, push.last_error) == ("sent", 3, "")
    assert len(fake_shop.requests) == 3


def test_shopify_throttled_is_retried_and_user_errors_end_the_push(pushing, fake_shop, deliver):
    active_workflow("VIP", "order.created", [add_tags("VIP", "Gold buyer")])
    deliver(pushing, "orders/create", open_order())
    fake_shop.answers = [
        (200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}, {}),
        (200, {"data": {"tagsAdd": {"node": None, "userErrors": [{"field": ["id"], "message": "Not found"}]}}}, {}),
    ]
    now = timezone.now() + timedelta(seconds=1)
    assert collect_and_send(pushing, now) == {"pending": 1, "waiting": 1}
    first, second = Push.objects.order_by("pk")
    assert (first.status, first.last_error) == ("pending", "Shopify throttled the request (THROTTLED)")
    assert pushes_send_due(now=now + timedelta(minutes=10)) == {"dead": 1, "sent": 1}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "dead" and "Not found" in first.last_error
    assert second.status == "sent"  # waited for the first one (same customer), then went
    assert sorted(first.tags + second.tags) == ["Gold buyer", "VIP"]


def test_a_non_public_shop_address_is_refused_without_the_test_allowance(pushing, deliver, settings):
    settings.CONNECTORS_PUSH_ALLOW_PRIVATE = False
    active_workflow("VIP", "order.created", [add_tags("VIP")])
    deliver(pushing, "orders/create", open_order())
    assert collect_and_send(pushing) == {"dead": 1}
    assert "non-public address (127.0.0.1)" in Push.objects.get().last_error


def test_the_loyalty_state_goes_to_metafields_and_only_when_it_changes(pushing, fake_shop, deliver):
    program = program_make()
    gold = Tier.objects.create(program=program, name="Gold", rank=2, threshold=1000)
    deliver(pushing, "orders/create", open_order())  # earns 244 points (1 per unit of goods after discount)
    customer = Customer.objects.get()
    membership = Membership.objects.get(customer=customer)
    loyalty.points_award(membership=membership, points=100, reason="welcome")
    loyalty.tier_set(membership=membership, tier=gold)

    assert collect_and_send(pushing) == {"sent": 1}
    request = fake_shop.requests[-1]["json"]
    assert "metafieldsSet(metafields: $metafields)" in request["query"]
    assert request["variables"]["metafields"] == [
        {
            "ownerId": "gid://shopify/Customer/115310627314723954",
            "namespace": "loyalty",
            "key": "points_balance",
            "type": "number_integer",
            "value": "344",
        },
        {
            "ownerId": "gid://shopify/Customer/115310627314723954",
            "namespace": "loyalty",
            "key": "tier",
            "type": "single_line_text_field",
            "value": "Gold",
        },
    ]
    assert RemoteRecord.objects.get(kind="customer").pushed_state == {"balance": 344, "tier": "Gold"}
    assert collect_and_send(pushing, timezone.now() + timedelta(seconds=5)) == {}  # unchanged: nothing sent


def test_woocommerce_gets_customer_meta(woo_shop, fake_shop, deliver):
    connection = connection_update(
        connection=woo_shop, push_enabled=True, api_token="ck_key:cs_secret", api_base_url=fake_shop.url
    )
    deliver(connection, "customer.created", fixture("woocommerce", "customer.created"))
    customer = Customer.objects.get()
    tags_add(customer=customer, names=["VIP"], source="workflow", source_ref="workflow_run:3")
    assert collect_and_send(connection) == {"sent": 1}
    request = fake_shop.requests[0]
    assert (request["method"], request["path"]) == ("PUT", "/wp-json/wc/v3/customers/25")
    assert request["headers"]["authorization"] == "Basic Y2tfa2V5OmNzX3NlY3JldA=="
    assert request["json"] == {"meta_data": [{"key": "loyalty_tags", "value": "VIP"}]}
