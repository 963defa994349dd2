"""
Tag attribution: an order placed within N days after a workflow tagged its customer (a TagAudit "added" row whose
source_ref names the workflow's run) is credited to that workflow — last touch over messages and tags together, so an
order counts once even when the same workflow sent a message and added a tag. Hand-computed on small data, through
the report, the API and the CSV, and refreshed by day.
"""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.automations import services as workflow_services
from apps.reports import services
from apps.reports.attribution import attribution_by_sender
from apps.reports.models import DailyMessageOrders
from apps.tagging import services as tagging_services
from apps.tagging.choices import TagSource

from ..factories import UserFactory
from .helpers import at, customer, order
from .test_message_attribution import MARCH, message, run_of, spring, welcome

pytestmark = pytest.mark.django_db


def tag(person, names, source_ref, when, *, remove=False, source=TagSource.WORKFLOW):
    with time_machine.travel(when, tick=False):
        call = tagging_services.tags_remove if remove else tagging_services.tags_add
        call(customer=person, names=names, source=source, source_ref=source_ref)


def vip():
    return workflow_services.workflow_create(
        name="VIP", definition={"schema": 1, "trigger": {"event": "event.custom"}, "steps": []}
    )


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
    eve = customer()
    with time_machine.travel(at("2026-03-10", 7), tick=False):
        order(eve, "15.00", "2026-03-04")
        order(eve, "20.00", "2026-03-09")
    with time_machine.travel(at("2026-03-10", 9), tick=False):
        services.rollups_refresh()
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
