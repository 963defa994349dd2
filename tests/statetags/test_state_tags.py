"""
State tags through the API with the worker running (django-q2 in sync mode, on commit): the tag is added when
a customer starts matching and removed when they stop — after a cancellation, a refund, or as a window slides
past their orders (frozen clock, the scheduled time pass); exclusive tiers switch on the order that crosses a
threshold; the "entered"/"left" steps run; every change is audited and announced.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail

from apps.automations import tasks
from apps.automations.models import Workflow, WorkflowRun
from apps.customers.models import DomainEvent
from apps.tagging.models import CustomerTag, TagAudit

from .conftest import NOW, tagged_with, tags

pytestmark = pytest.mark.django_db

HOT = {"tag": "Hot", "min_orders": 2, "min_spent": "500", "days": 30}


def test_a_cancellation_takes_the_tag_off(clock, feed):
    feed.install("active_high_value", HOT)
    ana = feed.customer("c-ana")
    feed.order(ana, "300.00", placed_at=NOW - timedelta(days=5))
    second = feed.order(ana, "250.00")
    assert tags(ana) == {"Hot"}

    feed.cancel(second)

    assert tags(ana) == set()
    assert list(TagAudit.objects.filter(customer=ana).order_by("pk").values_list("action", "source")) == [
        ("added", "workflow"),
        ("removed", "workflow"),
    ]
    assert DomainEvent.objects.filter(name="customer.tag_removed", customer=ana).count() == 1


def test_a_refund_takes_the_tag_off_and_a_new_order_puts_it_back(clock, feed):
    feed.install("active_high_value", HOT)
    bo = feed.customer("c-bo")
    feed.order(bo, "300.00", placed_at=NOW - timedelta(days=5))
    big = feed.order(bo, "250.00")
    assert tags(bo) == {"Hot"}

    feed.refund(big, "60.00")  # 490.00 net in the window
    assert tags(bo) == set()
    feed.order(bo, "10.00")

    assert tags(bo) == {"Hot"}


def test_the_window_slides_past_the_orders_and_the_time_pass_takes_the_tag_off(clock, feed):
    workflow = feed.install("active_high_value", HOT)
    cy, fresh = feed.customer("c-cy"), feed.customer("c-fresh")
    feed.order(cy, "300.00", placed_at=NOW - timedelta(days=20))
    feed.order(cy, "300.00", placed_at=NOW - timedelta(days=1))
    feed.order(fresh, "300.00", placed_at=NOW - timedelta(days=2))
    feed.order(fresh, "300.00")
    assert tagged_with("Hot") == {"c-cy", "c-fresh"}

    clock.move_to(NOW + timedelta(days=9, hours=23))  # the 20-day-old order is still inside
    with feed.capture(execute=True):
        tasks.state_tags_time_pass()
    assert tagged_with("Hot") == {"c-cy", "c-fresh"}

    clock.move_to(NOW + timedelta(days=10, hours=1))  # ... and now it has left the 30 days
    with feed.capture(execute=True):
        tasks.state_tags_time_pass()

    assert tagged_with("Hot") == {"c-fresh"}
    removal = TagAudit.objects.get(action="removed")
    assert (removal.customer_id, removal.source_ref) == (cy.pk, f"state_tag:{workflow['id']}")
    assert Workflow.objects.get(pk=workflow["id"]).state_checked_at == NOW + timedelta(days=10, hours=1)


def test_exclusive_tiers_switch_in_one_transaction(clock, feed, monkeypatch):
    feed.install("spend_tiers", {"high_min": "800", "mid_min": "200"})
    dee = feed.customer("c-dee")
    feed.order(dee, "150.00")
    assert tags(dee) == {"Low value"}

    feed.order(dee, "100.00")  # 250: mid tier
    assert tags(dee) == {"Mid value"}
    first_big = feed.order(dee, "600.00")  # 850: high tier
    assert tags(dee) == {"High value"}
    feed.refund(first_big, "100.00")  # 750: back to mid

    assert tags(dee) == {"Mid value"}
    assert list(TagAudit.objects.filter(customer=dee).order_by("pk").values_list("tag_name", "action")) == [
        ("Low value", "added"),
        ("Low value", "removed"),
        ("Mid value", "added"),
        ("Mid value", "removed"),
        ("High value", "added"),
        ("High value", "removed"),
        ("Mid value", "added"),
    ]

    # a failure half-way through a switch changes nothing: the old tier stays
    from apps.automations.state_tags import apply

    def broken(**kwargs):
        raise RuntimeError("tagging is down")

    monkeypatch.setattr(apply, "tags_add", broken)
    feed.order(dee, "200.00")  # 950 would be high

    assert tags(dee) == {"Mid value"}


def test_entered_and_left_steps_run_as_ordinary_runs(clock, feed):
    definition = {
        "schema": 1,
        "trigger": {
            "event": "customer.state_tag",
            "where": {"field": "customer.total_spent", "op": "gte", "value": 100},
        },
        "state": {"tag": "Club"},
        "steps": [{"id": "e1", "action": "notify.email", "params": {"subject": "Welcome to the club", "body": "Hi"}}],
        "left": [{"id": "l1", "action": "customer.add_tags", "params": {"tags": ["Former club member"]}}],
    }
    created = feed.post("/api/v1/workflows/", {"name": "Club", "definition": definition}, expect=201)
    feed.post(f"/api/v1/workflows/{created['id']}/activate/")
    eve = feed.customer("c-eve", email="eve@example.com")

    order = feed.order(eve, "120.00")
    feed.cancel(order)

    assert tags(eve) == {"Former club member"}
    assert [message.subject for message in mail.outbox] == ["Welcome to the club"]
    runs = WorkflowRun.objects.filter(workflow_id=created["id"]).order_by("pk")
    assert [(run.context["state"], run.status) for run in runs] == [("entered", "succeeded"), ("left", "succeeded")]
    assert list(runs[1].steps.order_by("pk").values_list("path", flat=True)) == ["trigger", "left[0]"]


def test_a_state_tag_on_customer_tags_follows_tag_changes(clock, feed):
    definition = {
        "schema": 1,
        "trigger": {
            "event": "customer.state_tag",
            "where": {"field": "customer.tags", "op": "contains", "value": "VIP"},
        },
        "state": {"tag": "Concierge"},
    }
    created = feed.post("/api/v1/workflows/", {"name": "Concierge", "definition": definition}, expect=201)
    feed.post(f"/api/v1/workflows/{created['id']}/activate/")
    fay = feed.customer("c-fay")

    feed.post(f"/api/v1/customers/{fay.pk}/add_tags/", {"tags": ["VIP"]})
    assert tags(fay) == {"VIP", "Concierge"}
    feed.post(f"/api/v1/customers/{fay.pk}/remove_tags/", {"tags": ["vip"]})

    assert tags(fay) == set()
    listed = feed.get(f"/api/v1/workflows/{created['id']}/")
    assert (listed["kind"], listed["carriers"]) == ("state", 0)


def test_a_profile_change_re_evaluates_state_tags(clock, feed):
    definition = {
        "schema": 1,
        "trigger": {"event": "customer.state_tag", "where": {"field": "customer.state", "op": "eq", "value": "guest"}},
        "state": {"tag": "Guest checkout"},
    }
    created = feed.post("/api/v1/workflows/", {"name": "Guests", "definition": definition}, expect=201)
    feed.post(f"/api/v1/workflows/{created['id']}/activate/")
    gus = feed.customer("c-gus", state="guest")
    assert tags(gus) == {"Guest checkout"}

    feed.patch(f"/api/v1/customers/{gus.pk}/", {"state": "registered"})

    assert tags(gus) == set()


def test_activation_tags_existing_customers_without_running_entered_steps(clock, feed):
    hal = feed.customer("c-hal", email="hal@example.com")
    feed.order(hal, "1200.00", placed_at=NOW - timedelta(days=3))
    for total in ("10.00", "10.00", "10.00", "10.00"):
        feed.order(hal, total, placed_at=NOW - timedelta(days=2))

    payload = feed.install("high_value", {"tag": "Whale"})

    assert tagged_with("Whale") == {"c-hal"}
    assert WorkflowRun.objects.filter(workflow_id=payload["id"]).count() == 0
    assert feed.get(f"/api/v1/workflows/{payload['id']}/")["carriers"] == 1
    assert CustomerTag.objects.get(tag__name="Whale").source_ref == f"state_tag:{payload['id']}:fill"


def test_a_state_tag_definition_is_validated_with_paths(feed):
    definition = {
        "schema": 1,
        "trigger": {"event": "customer.state_tag", "where": {"field": "order.total", "op": "gt", "value": 1}},
        "state": {"tag": "", "group": "Tiers", "rank": -1, "colour": "red"},
        "left": "nope",
    }

    response = feed.client.post("/api/v1/workflows/", {"name": "Bad", "definition": definition}, format="json")

    assert response.status_code == 400
    assert sorted({error["path"] for error in response.json()["errors"]}) == [
        "left",
        "state.colour",
        "state.rank",
        "state.tag",
        "trigger.where.field",
    ]
    assert Workflow.objects.count() == 0


def test_an_order_edited_down_takes_the_tag_off_and_edited_up_puts_it_back(clock, feed):
    from apps.customers.models import Order
    from apps.customers.services import LineInput, order_amend

    feed.install("active_high_value", HOT)
    di = feed.customer("c-di")
    feed.order(di, "300.00", placed_at=NOW - timedelta(days=5))
    big = feed.order(di, "250.00")
    assert tags(di) == {"Hot"}

    order = Order.objects.get(pk=big["id"])
    with feed.capture(execute=True):
        order_amend(order=order, lines=[LineInput(title="Item", quantity=1, unit_price=Decimal("150.00"))])
    assert tags(di) == set()  # 450.00 in the window
    with feed.capture(execute=True):
        order_amend(order=order, lines=[LineInput(title="Item", quantity=2, unit_price=Decimal("150.00"))])
    assert tags(di) == {"Hot"}
    assert DomainEvent.objects.filter(name="order.updated", customer=di).count() == 2
