"""
Builders shared by the attribution tests (orders credited to the workflow or campaign that last messaged or tagged
the customer): senders, runs, deliveries, and the generated orders and instants of the randomised comparisons.
"""

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import time_machine

from apps.automations import services as workflow_services
from apps.automations.models import Workflow, WorkflowRun
from apps.campaigns.promotions.models import Campaign
from apps.customers import services as customer_services
from apps.customers.messaging.models import Delivery
from apps.customers.models import Customer
from apps.reports import services
from apps.reports.attribution import attribution_by_sender
from apps.reports.selectors import Period
from tests.campaigns.promo_helpers import campaign_with

from .helpers import at, customer, order

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))


def plain_workflow(name: str) -> Workflow:
    """A workflow with no steps (the attribution only needs its runs)."""
    return workflow_services.workflow_create(
        name=name, definition={"schema": 1, "trigger": {"event": "event.custom"}, "steps": []}
    )


def welcome() -> Workflow:
    return plain_workflow("Welcome")


def vip() -> Workflow:
    return plain_workflow("VIP")


def spring() -> Campaign:
    return campaign_with("Spring", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])


def run_of(workflow, person, *, kind="event", when="2026-03-01") -> WorkflowRun:
    return WorkflowRun.objects.create(
        workflow=workflow,
        kind=kind,
        customer=person if kind == "event" else None,
        status="succeeded",
        created_at=at(when, 8),
    )


def message(person, cause, sent, *, status="sent", key=None) -> Delivery:
    return Delivery.objects.create(
        key=key or f"{cause}:{person.pk}:{sent.isoformat()}",
        channel="email",
        customer=person,
        to="x@example.com",
        status=status,
        sent_at=sent if status == "sent" else None,
        cause=cause,
        created_at=sent,
    )


def refreshed_customer() -> Customer:
    """A customer with orders on 4 and 9 March, rolled up by a refresh at 09:00 on 10 March."""
    person = customer()
    with time_machine.travel(at("2026-03-10", 7), tick=False):
        order(person, "15.00", "2026-03-04")
        order(person, "20.00", "2026-03-09")
    with time_machine.travel(at("2026-03-10", 9), tick=False):
        services.rollups_refresh()
    return person


def random_instant(rng: random.Random) -> datetime:
    """An instant from 10 February to 27 March (a touch before, in or around the March report)."""
    return at("2026-02-10") + timedelta(days=rng.randint(0, 45), hours=rng.randint(0, 23))


def random_orders(rng: random.Random, person: Customer) -> None:
    """0 to 4 orders from 20 February to 6 April: about 15% of them cancelled, 13% refunded 2.00."""
    for _ in range(rng.randint(0, 4)):
        placed = at("2026-02-20") + timedelta(days=rng.randint(0, 45))
        created = order(person, f"{rng.randint(5, 90)}.00", placed.date().isoformat())
        if rng.random() < 0.15:
            customer_services.order_cancel(order=created)
        elif rng.random() < 0.15:
            customer_services.refund_create(order=created, amount=Decimal("2.00"))


def measured(window: int, *fields: str) -> dict[tuple[str, int], tuple]:
    """March's attribution, both owners, by ("w", workflow id) / ("c", campaign id): `fields` of senders with orders."""
    return {
        (kind, pk): tuple(row[field] for field in fields)
        for kind, owner in (("w", "workflow"), ("c", "campaign"))
        for pk, row in attribution_by_sender(MARCH.start, MARCH.end, window, owner=owner).items()
        if row["orders"]
    }
