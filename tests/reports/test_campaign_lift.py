"""
A campaign's lift in the campaigns report: customers who got a code against the campaign's holdout, conversion
rate and revenue per customer within a window — hand-computed, against SQL over the raw tables, after late changes.
"""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from apps.campaigns.models import CampaignHoldout, Code
from apps.customers import services as customer_services
from apps.customers.models import Order
from apps.reports import services
from apps.reports.lift import campaign_lift_measure, campaigns_report
from apps.reports.models import DailyCampaignLift, RollupState
from apps.reports.selectors import Period
from tests.campaigns.promo_helpers import campaign_with

from ..factories import UserFactory
from .helpers import at, customer, order

pytestmark = pytest.mark.django_db

PERIOD = Period(date(2026, 3, 1), date(2026, 3, 31))


def spring(name="Spring"):
    return campaign_with(name, holdout_percent=50, incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])


def exposed(campaign, held, size, converters, *, when="2026-03-05", late=0, prefix="T"):
    """`size` customers who got a code (or were held out) on `when`; `converters` ordered $50.00 two days later,
    `late` more $80.00 ten days later."""
    people = []
    for index in range(size):
        person = customer()
        if held:
            CampaignHoldout.objects.create(campaign=campaign, customer=person, held_out_at=at(when), ref="segment:1")
        else:
            Code.objects.create(
                campaign=campaign, code=f"{prefix}{campaign.pk}-{person.pk}", customer=person, published_at=at(when)
            )
        if index < converters:
            order(person, "50.00", "2026-03-07")
        elif index < converters + late:
            order(person, "80.00", "2026-03-15")
        people.append(person)
    return people


def test_treated_against_the_holdout_matches_the_hand_computed_rates_interval_and_sentence():
    campaign = spring()
    exposed(campaign, False, 40, 20, late=5)
    exposed(campaign, True, 40, 6)

    services.rollups_refresh()
    lift = campaign_lift_measure(campaign, PERIOD, 7)

    assert [(g.name, g.customers, g.converters, round(g.revenue_per_customer, 2)) for g in lift.groups] == [
        ("Holdout", 40, 6, 7.5),
        ("Treated", 40, 20, 25.0),
    ]
    (comparison,) = lift.comparisons
    # p_T - p_H = 0.50 - 0.15, se = sqrt(.5·.5/40 + .15·.85/40) = 0.097147 → ±19.04 points
    assert (comparison.rate_points, comparison.rate_low, comparison.rate_high) == (35.0, 15.96, 54.04)
    # revenue: s²_T = 40/39·(50000/40 - 25²) = 641.03, s²_H = 40/39·(15000/40 - 7.5²) = 326.92,
    # se = sqrt(641.03/40 + 326.92/40) = 4.9192 → 17.50 ± 9.64
    assert (comparison.revenue_diff, comparison.revenue_low, comparison.revenue_high) == (17.5, 7.86, 27.14)
    assert comparison.sentence == (
        "Treated customers convert 35.0 points better than the holdout, 95 % interval 16.0 to 54.0: significant."
        " Revenue per customer differs by +17.50 USD (95 % interval 7.86 to 27.14)."
    )
    # a 14-day window also counts the five late orders of the treated group
    wide = campaign_lift_measure(campaign, PERIOD, 14)
    assert [(g.name, g.converters, round(g.revenue, 2)) for g in wide.groups] == [
        ("Holdout", 6, 300.0),
        ("Treated", 25, 1400.0),
    ]


def test_a_customer_with_a_code_and_a_later_holdout_record_counts_once_from_the_first():
    campaign = spring()
    person = customer()
    Code.objects.create(campaign=campaign, code="FIRST-1", customer=person, published_at=at("2026-03-05"))
    Code.objects.create(campaign=campaign, code="SECOND-1", customer=person, published_at=at("2026-03-09"))
    CampaignHoldout.objects.create(campaign=campaign, customer=person, held_out_at=at("2026-03-08"))
    order(person, "20.00", "2026-03-06")

    services.rollups_refresh()

    assert [
        (g.name, g.customers, g.converters, g.revenue) for g in campaign_lift_measure(campaign, PERIOD, 7).groups
    ] == [("Treated", 1, 1, 20.0)]


def test_too_few_customers_is_said_plainly():
    campaign = spring()
    exposed(campaign, False, 10, 3)
    exposed(campaign, True, 10, 1)
    services.rollups_refresh()
    (comparison,) = campaign_lift_measure(campaign, PERIOD, 7).comparisons
    assert comparison.too_small
    assert comparison.sentence.startswith("Treated customers vs the holdout: the sample is too small to tell")


def test_the_campaign_report_page_api_and_csv(django_user_model):
    campaign = spring()
    exposed(campaign, False, 30, 12)
    exposed(campaign, True, 30, 6)
    services.rollups_refresh()
    client = APIClient()
    client.force_login(UserFactory(username="boss"))
    query = f"start=2026-03-01&end=2026-03-31&campaign={campaign.pk}&window=7"

    page = client.get(f"/admin/reports/campaigns/?{query}")
    assert page.status_code == 200
    assert "Treated customers convert 20.0 points better than the holdout" in page.content.decode()
    csv = client.get(f"/admin/reports/campaigns/?{query}&csv=conversions").content.decode()
    assert csv.splitlines() == [
        "Group,Customers exposed,Converted,Conversion rate,Revenue per customer",
        "Holdout,30,6,20.0,10.00",
        "Treated,30,12,40.0,20.00",
    ]
    lift_csv = client.get(f"/admin/reports/campaigns/?{query}&csv=lift").content.decode().splitlines()
    assert lift_csv[1].startswith("Treated,Holdout,20.0,")
    body = client.get(f"/api/v1/reports/campaigns/?{query}").json()
    conversions = next(table for table in body["tables"] if table["name"] == "conversions")
    assert [(row["group"], row["customers"], row["converters"]) for row in conversions["rows"]] == [
        ("Holdout", 30, 6),
        ("Treated", 30, 12),
    ]
    assert body["verdicts"][0].startswith("Treated customers convert 20.0 points better than the holdout")
    # bad input: JSON errors with the field's path; the page answers 400
    assert client.get("/api/v1/reports/campaigns/?campaign=999999").json()["errors"][0]["path"] == "campaign"
    assert client.get("/api/v1/reports/campaigns/?campaign=abc").status_code == 400
    assert (
        client.get(f"/api/v1/reports/campaigns/?campaign={campaign.pk}&window=91").json()["errors"][0]["path"]
        == "window"
    )
    assert client.get("/admin/reports/campaigns/?campaign=x").status_code == 400


def test_without_the_reports_permission_the_campaign_lift_is_403_and_nothing_changes():
    campaign = spring()
    exposed(campaign, False, 5, 1)
    services.rollups_refresh()
    state = RollupState.objects.values_list("last_started_at", flat=True).get()
    rows = DailyCampaignLift.objects.count()
    clerk = UserFactory(username="clerk", is_staff=True, is_superuser=False)
    clerk.user_permissions.add(Permission.objects.get(codename="view_campaign", content_type__app_label="campaigns"))
    client = APIClient()
    client.force_login(clerk)

    assert client.get(f"/admin/reports/campaigns/?campaign={campaign.pk}").status_code == 403
    assert client.get(f"/api/v1/reports/campaigns/?campaign={campaign.pk}").status_code == 403
    assert RollupState.objects.values_list("last_started_at", flat=True).get() == state
    assert DailyCampaignLift.objects.count() == rows


def test_the_campaign_report_reads_a_fixed_number_of_queries_whatever_the_customers(django_assert_num_queries):
    small, large = spring("Small"), spring("Large")
    exposed(small, False, 3, 1, prefix="S")
    exposed(small, True, 3, 1, prefix="S")
    exposed(large, False, 30, 10, prefix="L")
    exposed(large, True, 30, 5, prefix="L")
    services.rollups_refresh()
    campaigns_report(PERIOD, small, 7)  # warm the content types and the like
    with django_assert_num_queries(QUERIES) as first:
        campaigns_report(PERIOD, small, 7).as_json()
    with django_assert_num_queries(QUERIES):
        campaigns_report(PERIOD, large, 7).as_json()
    assert first  # the same count for 6 and 60 customers


# DailyFigures totals (this period and the previous), budget limits and their counters, per-campaign days,
# redemptions per day, messages sent, orders attributed, the lift's one aggregate (no campaign has redemptions or
# messages here, so the name look-ups of empty id lists cost nothing).
QUERIES = 9


RAW_FIRST = """
SELECT customer_id, t, held FROM (
  SELECT customer_id, t, held, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY t, held) AS n FROM (
    SELECT customer_id, published_at AS t, 0 AS held FROM campaigns_code
    WHERE campaign_id = %s AND customer_id IS NOT NULL AND published_at IS NOT NULL
    UNION ALL
    SELECT customer_id, held_out_at, 1 FROM campaigns_campaignholdout WHERE campaign_id = %s
  ) u
) f WHERE n = 1
"""
WINDOW_END = {"postgresql": "x.t + make_interval(days => %s)", "sqlite": "datetime(x.t, '+' || %s || ' days')"}


def raw_groups(campaign, window):
    """The reference: first exposure per customer and their orders within the window, in SQL over raw tables."""
    end = WINDOW_END[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT x.held, COUNT(*), SUM(CASE WHEN r.n > 0 THEN 1 ELSE 0 END), SUM(r.revenue)
            FROM ({RAW_FIRST}) x
            JOIN (
              SELECT x.customer_id AS customer_id, COUNT(o.id) AS n,
                     COALESCE(SUM(o.total_shop - COALESCE(o.refunded_total_shop, 0)), 0) AS revenue
              FROM ({RAW_FIRST}) x
              LEFT JOIN customers_order o ON o.customer_id = x.customer_id AND o.status <> 'cancelled'
                   AND o.placed_at > x.t AND o.placed_at <= {end}
              GROUP BY x.customer_id
            ) r ON r.customer_id = x.customer_id
            GROUP BY x.held
            """,
            [campaign.pk, campaign.pk, campaign.pk, campaign.pk, window],
        )
        return {
            ("Holdout" if held else "Treated"): (count, converted, round(float(revenue), 2))
            for held, count, converted, revenue in cursor.fetchall()
        }


def test_the_lift_matches_sql_over_the_raw_codes_holdouts_and_orders_on_generated_data():
    rng = random.Random(11)
    campaign = spring()
    for index in range(80):
        person = customer()
        moments = [at("2026-03-02") + timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 23)) for _ in range(2)]
        if rng.random() < 0.7:
            Code.objects.create(campaign=campaign, code=f"G{index}", customer=person, published_at=moments[0])
        if rng.random() < 0.5:
            CampaignHoldout.objects.create(campaign=campaign, customer=person, held_out_at=moments[1])
        for _ in range(rng.randint(0, 3)):
            placed = at("2026-03-02") + timedelta(days=rng.randint(0, 45), hours=rng.randint(0, 23))
            created = order(person, f"{rng.randint(5, 90)}.00", placed.date().isoformat())
            if rng.random() < 0.2:
                customer_services.order_cancel(order=created)
            elif rng.random() < 0.2:
                customer_services.refund_create(order=created, amount=Decimal("3.00"))
    services.rollups_refresh()

    for window in (1, 7, 30):
        measured = {
            g.name: (g.customers, g.converters, round(g.revenue, 2))
            for g in campaign_lift_measure(campaign, Period(PERIOD.start, PERIOD.end), window).groups
        }
        assert measured == raw_groups(campaign, window), window


def test_a_late_order_a_refund_and_a_new_exposure_recompute_only_their_days():
    campaign = spring()
    with time_machine.travel(at("2026-03-12", 8), tick=False):
        treated = exposed(campaign, False, 3, 1)
        exposed(campaign, True, 3, 0, when="2026-03-10")
    with time_machine.travel(at("2026-03-12", 9), tick=False):
        services.rollups_refresh()
    held_rows = DailyCampaignLift.objects.filter(day=date(2026, 3, 10)).values_list("pk", "held_out", "exposures")
    before = list(held_rows)

    with time_machine.travel(at("2026-03-22"), tick=False):
        order(treated[2], "30.00", "2026-03-06")  # a late import, one day after the exposure
        customer_services.refund_create(order=Order.objects.get(customer=treated[0]), amount=Decimal("20.00"))
        later = customer()
        Code.objects.create(campaign=campaign, code="LATE-1", customer=later, published_at=at("2026-03-20"))
        order(later, "10.00", "2026-03-21")
        services.rollups_refresh()

    groups = {g.name: (g.customers, g.converters, g.revenue) for g in campaign_lift_measure(campaign, PERIOD, 7).groups}
    assert groups == {"Holdout": (3, 0, 0.0), "Treated": (4, 3, 70.0)}
    assert list(held_rows) == before  # 10 March (nobody changed) was not rewritten
