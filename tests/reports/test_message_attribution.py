"""
Message attribution: an order placed within N days after a sent message is credited (last touch) to the workflow
or campaign that sent it — hand-computed, against SQL over the raw deliveries and orders, and refreshed by day.
"""

import random
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from apps.customers import services as customer_services
from apps.reports import services
from apps.reports.attribution import attribution_by_sender
from apps.reports.lift import campaigns_report, workflows_report
from apps.reports.models import DailyMessageOrders

from ..factories import UserFactory
from .attribution_helpers import (
    MARCH,
    measured,
    message,
    plain_workflow,
    random_instant,
    random_orders,
    refreshed_customer,
    run_of,
    spring,
    welcome,
)
from .helpers import at, customer, order

pytestmark = pytest.mark.django_db


def hand_data():
    workflow, campaign = welcome(), spring()
    ana, bob, cid, dan = customer(), customer(), customer(), customer()
    # Ana: the workflow's message, an order a day later; then the campaign's message, orders 2 and 17 days later
    message(ana, f"workflow_run:{run_of(workflow, ana).pk}", at("2026-03-05"))
    order(ana, "30.00", "2026-03-06")
    message(ana, f"campaign:{campaign.pk}", at("2026-03-08"))
    order(ana, "40.00", "2026-03-10")
    order(ana, "50.00", "2026-03-25")
    # Bob: a queued (unsent) message and a sent one with no sender: his order is nobody's
    message(bob, f"workflow_run:{run_of(workflow, bob).pk}", at("2026-03-05"), status="queued")
    message(bob, "", at("2026-03-05", 13))
    order(bob, "99.00", "2026-03-06")
    # Cid: a bulk run's message, an order 30 hours later (day 2) and a cancelled one
    bulk = run_of(workflow, None, kind="bulk")
    message(cid, f"bulk_run:{bulk.pk}", at("2026-03-01", 6))
    order(cid, "25.00", "2026-03-02")
    customer_services.order_cancel(order=order(cid, "70.00", "2026-03-03"))
    # Dan: a message 104 days before his order is too old to count
    message(dan, f"workflow_run:{run_of(workflow, dan, when='2025-12-01').pk}", at("2025-12-01"))
    order(dan, "60.00", "2026-03-15")
    return workflow, campaign


def test_orders_after_a_message_go_to_the_last_sender_within_the_window_hand_computed():
    workflow, campaign = hand_data()

    services.rollups_refresh()

    week = {**attribution_by_sender(MARCH.start, MARCH.end, 7, owner="workflow")}
    assert week == {
        workflow.pk: {
            "sent": 2,
            "orders": 2,
            "revenue": Decimal("55.00"),
            "tag_orders": 0,
            "tag_revenue": Decimal("0.00"),
        }
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
    assert attribution_by_sender(MARCH.start, MARCH.end, 30, owner="campaign") == {
        campaign.pk: {
            "sent": 1,
            "orders": 2,
            "revenue": Decimal("90.00"),
            "tag_orders": 0,
            "tag_revenue": Decimal("0.00"),
        }
    }
    assert attribution_by_sender(MARCH.start, MARCH.end, 1, owner="workflow") == {
        workflow.pk: {
            "sent": 2,
            "orders": 1,
            "revenue": Decimal("30.00"),
            "tag_orders": 0,
            "tag_revenue": Decimal("0.00"),
        }
    }
    # the rollup rows: order day, sender, whole days after the message
    assert sorted(
        (row.day.isoformat(), row.workflow_id, row.campaign_id, row.offset, row.orders, str(row.revenue))
        for row in DailyMessageOrders.objects.all()
    ) == [
        ("2026-03-02", workflow.pk, None, 2, 1, "25.00"),
        ("2026-03-06", workflow.pk, None, 1, 1, "30.00"),
        ("2026-03-10", None, campaign.pk, 2, 1, "40.00"),
        ("2026-03-25", None, campaign.pk, 17, 1, "50.00"),
    ]


def test_the_workflows_and_campaigns_reports_api_and_csv_show_the_attribution():
    workflow, campaign = hand_data()
    services.rollups_refresh()
    client = APIClient()
    client.force_login(UserFactory(username="boss"))

    body = client.get("/api/v1/reports/workflows/?start=2026-03-01&end=2026-03-31&window=7").json()
    messages = next(table for table in body["tables"] if table["name"] == "messages")
    assert [(row["workflow"], row["sent"], row["orders"], row["revenue"]) for row in messages["rows"]] == [
        ("Welcome", 2, 2, "55.00")
    ]
    csv = client.get("/admin/reports/campaigns/?start=2026-03-01&end=2026-03-31&window=30&csv=messages")
    assert csv.content.decode().splitlines() == [
        "Campaign,Messages sent,Orders attributed,Revenue attributed,Revenue per message",
        "Spring,1,2,90.00,90.00",
    ]
    one = workflows_report(MARCH, workflow, 7)
    assert [row["orders"] for row in one.table("messages").rows] == [2]
    assert campaigns_report(MARCH, campaign, 7).table("messages").rows[0]["revenue"] == Decimal("40.00")


def test_a_message_sent_after_the_last_refresh_recomputes_only_its_day():
    workflow = welcome()
    eve = refreshed_customer()
    with time_machine.travel(at("2026-03-10", 13), tick=False):
        message(eve, f"workflow_run:{run_of(workflow, eve, when='2026-03-10').pk}", at("2026-03-10", 10))
        order(eve, "35.00", "2026-03-10")  # at noon, two hours after the message
        result = services.rollups_refresh()

    assert result.days == [date(2026, 3, 10)]
    assert attribution_by_sender(MARCH.start, MARCH.end, 7, owner="workflow") == {
        workflow.pk: {
            "sent": 1,
            "orders": 1,
            "revenue": Decimal("35.00"),
            "tag_orders": 0,
            "tag_revenue": Decimal("0.00"),
        }
    }


def test_without_the_reports_permission_the_attribution_is_403():
    hand_data()
    clerk = UserFactory(username="clerk", is_staff=True, is_superuser=False)
    clerk.user_permissions.add(Permission.objects.get(codename="view_workflow", content_type__app_label="automations"))
    client = APIClient()
    client.force_login(clerk)
    assert client.get("/api/v1/reports/workflows/?window=7").status_code == 403
    assert client.get("/admin/reports/campaigns/?window=7&csv=messages").status_code == 403
    assert DailyMessageOrders.objects.count() == 0  # nothing was computed on the way


RAW = {
    "postgresql": (
        "d.sent_at >= o.placed_at - make_interval(days => 90)",
        "o.placed_at <= d.sent_at + make_interval(days => %s)",
    ),
    "sqlite": (
        "d.sent_at >= datetime(o.placed_at, '-90 days')",
        "o.placed_at <= datetime(d.sent_at, '+' || %s || ' days')",
    ),
}


def raw_attribution(window):
    """The reference in SQL: each March order's last sent message (90 days), within the window, per sender."""
    horizon, within = RAW[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT CASE WHEN d.cause LIKE 'campaign:%%' THEN 'c' ELSE 'w' END,
                   CASE WHEN d.cause LIKE 'campaign:%%' THEN CAST(substr(d.cause, 10) AS INTEGER)
                        ELSE (SELECT r.workflow_id FROM automations_workflowrun r
                              WHERE r.id = CAST(substr(d.cause, CASE WHEN d.cause LIKE 'bulk%%' THEN 10 ELSE 14 END)
                                                AS INTEGER)) END,
                   COUNT(*), SUM(o.total_shop - COALESCE(o.refunded_total_shop, 0))
            FROM customers_order o
            JOIN customers_delivery d ON d.id = (
                SELECT d2.id FROM customers_delivery d2
                WHERE d2.customer_id = o.customer_id AND d2.status = 'sent' AND d2.sent_at < o.placed_at
                  AND {horizon.replace("d.", "d2.")}
                  AND (d2.cause LIKE 'workflow_run:%%' OR d2.cause LIKE 'bulk_run:%%' OR d2.cause LIKE 'campaign:%%')
                ORDER BY d2.sent_at DESC, d2.id DESC LIMIT 1)
            WHERE o.status <> 'cancelled' AND o.placed_at >= %s AND o.placed_at < %s AND {within}
            GROUP BY 1, 2
            """,
            [at("2026-03-01", 0), at("2026-04-01", 0), window],
        )
        return {(kind, pk): (count, Decimal(str(money)).quantize(Decimal("0.01"))) for kind, pk, count, money in cursor}


def test_the_attribution_matches_sql_over_the_raw_deliveries_and_orders_on_generated_data():
    rng = random.Random(5)
    workflows = [welcome(), plain_workflow("Win-back")]
    campaign = spring()
    bulk = run_of(workflows[1], None, kind="bulk")
    for index in range(60):
        person = customer()
        for number in range(rng.randint(0, 4)):
            sent = random_instant(rng)
            cause = rng.choice(
                [
                    f"workflow_run:{run_of(rng.choice(workflows), person).pk}",
                    f"bulk_run:{bulk.pk}",
                    f"campaign:{campaign.pk}",
                    "",
                    "demo",
                ]
            )
            message(
                person, cause, sent, status=rng.choice(["sent", "sent", "sent", "queued"]), key=f"k{index}:{number}"
            )
        random_orders(rng, person)
    services.rollups_refresh()

    for window in (1, 7, 30):
        assert measured(window, "orders", "revenue") == raw_attribution(window), window
