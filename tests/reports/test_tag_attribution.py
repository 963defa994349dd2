"""
Tag attribution: an order placed within N days after a workflow tagged its customer (a TagAudit "added" row whose
source_ref names the workflow's run) is credited to that workflow — last touch over messages and tags together, so an
order counts once even when the same workflow sent a message and added a tag. Hand-computed on small data, through
the report, the API and the CSV, and refreshed by day.
"""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.automations.models import WorkflowRun
from apps.customers.messaging.models import Delivery
from apps.customers.models import Order
from apps.reports import services
from apps.reports.attribution import attribution_by_sender
from apps.reports.models import DailyMessageOrders
from apps.tagging import services as tagging_services
from apps.tagging.choices import TagSource
from apps.tagging.models import TagAudit

from ..factories import UserFactory
from .attribution_helpers import (
    MARCH,
    measured,
    message,
    random_instant,
    random_orders,
    refreshed_customer,
    run_of,
    spring,
    vip,
    welcome,
)
from .helpers import at, customer, order

pytestmark = pytest.mark.django_db


def tag(person, names, source_ref, when, *, remove=False, source=TagSource.WORKFLOW):
    with time_machine.travel(when, tick=False):
        call = tagging_services.tags_remove if remove else tagging_services.tags_add
        call(customer=person, names=names, source=source, source_ref=source_ref)


def hand_data():
    welcome_flow, vip_flow, campaign = welcome(), vip(), spring()
    ana, bob, cid, dan = customer(), customer(), customer(), customer()
    # Ana: Welcome's run sends a message (5 Mar 12:00) and then tags her (13:00): her order of 7 Mar counts once, as
    # the tag's (the later touch), 47 hours after it → day 2
    run = run_of(welcome_flow, ana, when="2026-03-05")
    message(ana, f"workflow_run:{run.pk}", at("2026-03-05", 12))
    tag(ana, ["new"], f"workflow_run:{run.pk}", at("2026-03-05", 13))
    order(ana, "30.00", "2026-03-07")
    # Bob: VIP tags him (2 Mar), the campaign's message comes later (4 Mar): the 6 Mar order is the campaign's;
    # VIP tags him again (8 Mar): the 10 Mar order is VIP's, day 2
    vip_run = run_of(vip_flow, bob, when="2026-03-02")
    tag(bob, ["vip"], f"workflow_run:{vip_run.pk}", at("2026-03-02"))
    message(bob, f"campaign:{campaign.pk}", at("2026-03-04"))
    order(bob, "40.00", "2026-03-06")
    tag(bob, ["gold"], f"workflow_run:{vip_run.pk}", at("2026-03-08"))
    order(bob, "50.00", "2026-03-10")
    # Cid: Welcome's message (1 Mar); a manual tag and a tag *removed* by VIP's run after it are no touches
    message(cid, f"workflow_run:{run_of(welcome_flow, cid).pk}", at("2026-03-01"))
    tag(cid, ["manual"], "", at("2026-03-02"), source=TagSource.MANUAL)
    tag(cid, ["manual"], f"workflow_run:{vip_run.pk}", at("2026-03-02", 13), remove=True)
    order(cid, "20.00", "2026-03-03")
    # Dan: a bulk run of VIP tags him (10 Mar); his order 10 days later
    bulk = run_of(vip_flow, None, kind="bulk", when="2026-03-10")
    tag(dan, ["vip"], f"bulk_run:{bulk.pk}", at("2026-03-10"))
    order(dan, "70.00", "2026-03-20")
    return welcome_flow, vip_flow, campaign


def test_orders_after_a_workflow_tag_go_to_the_workflow_once_last_touch_hand_computed():
    welcome_flow, vip_flow, campaign = hand_data()

    services.rollups_refresh()

    assert attribution_by_sender(MARCH.start, MARCH.end, 7, owner="workflow") == {
        welcome_flow.pk: {
            "sent": 2,
            "orders": 2,
            "revenue": Decimal("50.00"),
            "tag_orders": 1,
            "tag_revenue": Decimal("30.00"),
        },
        vip_flow.pk: {
            "sent": 0,
            "orders": 1,
            "revenue": Decimal("50.00"),
            "tag_orders": 1,
            "tag_revenue": Decimal("50.00"),
        },
    }
    assert attribution_by_sender(MARCH.start, MARCH.end, 10, owner="workflow")[vip_flow.pk] == {
        "sent": 0,
        "orders": 2,
        "revenue": Decimal("120.00"),
        "tag_orders": 2,
        "tag_revenue": Decimal("120.00"),
    }
    assert attribution_by_sender(MARCH.start, MARCH.end, 7, owner="campaign") == {
        campaign.pk: {
            "sent": 1,
            "orders": 1,
            "revenue": Decimal("40.00"),
            "tag_orders": 0,
            "tag_revenue": Decimal("0.00"),
        }
    }
    assert sorted(
        (row.day.isoformat(), row.workflow_id, row.campaign_id, row.touch, row.offset, row.orders, str(row.revenue))
        for row in DailyMessageOrders.objects.all()
    ) == [
        ("2026-03-03", welcome_flow.pk, None, "message", 2, 1, "20.00"),
        ("2026-03-06", None, campaign.pk, "message", 2, 1, "40.00"),
        ("2026-03-07", welcome_flow.pk, None, "tag", 2, 1, "30.00"),
        ("2026-03-10", vip_flow.pk, None, "tag", 2, 1, "50.00"),
        ("2026-03-20", vip_flow.pk, None, "tag", 10, 1, "70.00"),
    ]


def test_the_workflows_report_api_and_csv_show_the_orders_after_a_tag():
    hand_data()
    services.rollups_refresh()
    client = APIClient()
    client.force_login(UserFactory(username="boss"))

    body = client.get("/api/v1/reports/workflows/?start=2026-03-01&end=2026-03-31&window=10").json()
    table = next(table for table in body["tables"] if table["name"] == "messages")
    assert [
        (row["workflow"], row["sent"], row["orders"], row["revenue"], row["tag_orders"], row["tag_revenue"])
        for row in table["rows"]
    ] == [("VIP", 0, 2, "120.00", 2, "120.00"), ("Welcome", 2, 2, "50.00", 1, "30.00")]
    csv = client.get("/admin/reports/workflows/?start=2026-03-01&end=2026-03-31&window=10&csv=messages")
    assert csv.content.decode().splitlines() == [
        "Workflow,Messages sent,Orders attributed,Revenue attributed,Of which after a tag,Revenue after a tag,"
        "Revenue per message",
        "VIP,0,2,120.00,2,120.00,",
        "Welcome,2,2,50.00,1,30.00,10.00",
    ]


def test_a_tag_added_after_the_last_refresh_recomputes_only_the_days_of_the_orders_it_touches():
    flow = vip()
    eve = refreshed_customer()
    with time_machine.travel(at("2026-03-10", 13), tick=False):
        run = run_of(flow, eve, when="2026-03-10")
    tag(eve, ["vip"], f"workflow_run:{run.pk}", at("2026-03-10", 10))
    with time_machine.travel(at("2026-03-10", 13), tick=False):
        order(eve, "35.00", "2026-03-10")  # at noon, two hours after the tag
        result = services.rollups_refresh()

    assert result.days == [date(2026, 3, 10)]
    assert attribution_by_sender(MARCH.start, MARCH.end, 7, owner="workflow") == {
        flow.pk: {"sent": 0, "orders": 1, "revenue": Decimal("35.00"), "tag_orders": 1, "tag_revenue": Decimal("35.00")}
    }


def reference(window: int) -> dict[tuple[str, int], tuple[int, Decimal, int, Decimal]]:
    """
    The attribution recomputed in Python from the raw rows (no rollup): each March order (not cancelled) goes to the
    later of its customer's last sent message and last workflow tag before it (90 days; the message on a tie).
    """
    workflow_of = dict(WorkflowRun.objects.values_list("pk", "workflow_id"))

    def sender(cause: str) -> tuple[str, int] | None:
        kind, _, number = cause.partition(":")
        if not number.isdigit():
            return None
        if kind in ("workflow_run", "bulk_run"):
            return ("w", workflow_of[int(number)]) if int(number) in workflow_of else None
        return ("c", int(number)) if kind == "campaign" else None

    touches: dict[int, list[tuple[object, int, tuple[str, int], str]]] = {}
    for person, sent_at, cause, status in Delivery.objects.values_list("customer_id", "sent_at", "cause", "status"):
        if status == "sent" and sent_at is not None and (who := sender(cause)):
            touches.setdefault(person, []).append((sent_at, 1, who, "message"))
    for person, created_at, source_ref, action in TagAudit.objects.values_list(
        "customer_id", "created_at", "source_ref", "action"
    ):
        if action == "added" and not source_ref.startswith("campaign") and (who := sender(source_ref)):
            touches.setdefault(person, []).append((created_at, 0, who, "tag"))
    out: dict[tuple[str, int], list] = {}
    for person, placed_at, total, refunded, status in Order.objects.values_list(
        "customer_id", "placed_at", "total_shop", "refunded_total_shop", "status"
    ):
        if status == "cancelled" or not at("2026-03-01", 0) <= placed_at < at("2026-04-01", 0):
            continue
        before = [t for t in touches.get(person, []) if placed_at - timedelta(days=90) <= t[0] < placed_at]
        if not before:
            continue
        touched_at, _, who, touch = max(before, key=lambda t: (t[0], t[1]))  # the message wins a tie
        if placed_at - touched_at > timedelta(days=window):
            continue
        net = total - (refunded or Decimal("0"))
        cell = out.setdefault(who, [0, Decimal("0.00"), 0, Decimal("0.00")])
        cell[0] += 1
        cell[1] += net
        if touch == "tag":
            cell[2] += 1
            cell[3] += net
    return {who: tuple(cell) for who, cell in out.items()}


def test_the_attribution_matches_a_recomputation_from_the_raw_rows_on_generated_data():
    rng = random.Random(16)
    flows = [welcome(), vip()]
    campaign = spring()
    bulk = run_of(flows[1], None, kind="bulk")
    for index in range(50):
        person = customer()
        runs = [run_of(rng.choice(flows), person) for _ in range(2)]
        causes = [f"workflow_run:{runs[0].pk}", f"workflow_run:{runs[1].pk}", f"bulk_run:{bulk.pk}"]
        instants = []
        for number in range(rng.randint(0, 3)):
            sent = random_instant(rng)
            instants.append(sent)
            message(
                person,
                rng.choice([*causes, f"campaign:{campaign.pk}", ""]),
                sent,
                status=rng.choice(["sent", "sent", "queued"]),
                key=f"k{index}:{number}",
            )
        for _ in range(rng.randint(0, 3)):
            added = (
                rng.choice(instants)  # on the same instant as a message: the message wins
                if instants and rng.random() < 0.25
                else random_instant(rng)
            )
            TagAudit.objects.create(
                customer=person,
                tag_name=rng.choice(["a", "b"]),
                action=rng.choice(["added", "added", "removed"]),
                source=rng.choice(["workflow", "workflow", "manual"]),
                source_ref=rng.choice([*causes, ""]),
                created_at=added,
            )
        random_orders(rng, person)
    services.rollups_refresh()

    assert DailyMessageOrders.objects.filter(touch="tag").count() >= 5
    assert DailyMessageOrders.objects.filter(touch="message").count() >= 5
    for window in (1, 7, 30):
        assert measured(window, "orders", "revenue", "tag_orders", "tag_revenue") == reference(window), window
