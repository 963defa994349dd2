"""The workflows report's lift against hand-computed conversion rates, intervals and sentences."""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.automations import services as workflow_services
from apps.automations.choices import HELD_OUT
from apps.automations.models import WorkflowRun, WorkflowRunStep
from apps.customers import services as customer_services
from apps.customers.models import Order
from apps.reports import services
from apps.reports.lift import lift_measure, workflows_report
from apps.reports.selectors import Period
from tests.automations.test_engine_support import definition

from ..factories import UserFactory
from .helpers import at, customer, order

pytestmark = pytest.mark.django_db

PERIOD = Period(date(2026, 3, 1), date(2026, 3, 31))


def ab_workflow():
    steps = [
        {"id": "ab", "split": [{"name": "A", "percent": 50, "steps": []}, {"name": "B", "percent": 50, "steps": []}]}
    ]
    return workflow_services.workflow_create(
        name="AB test", definition=definition("event.custom", steps), holdout_percent=20
    )


def group(workflow, name, size, converters, *, late=0):
    """`size` customers whose run took branch `name` (or were held out) on 5 March; `converters` ordered
    $50.00 two days later; `late` more ordered 10 days later (outside a 7-day window)."""
    for index in range(size):
        person = customer()
        held = name == "holdout"
        run = WorkflowRun.objects.create(
            workflow=workflow,
            kind="event",
            customer=person,
            status="skipped" if held else "succeeded",
            skip_reason=HELD_OUT if held else "",
            created_at=at("2026-03-05"),
        )
        if not held:
            WorkflowRunStep.objects.create(
                run=run, path="steps[0]", step_id="ab", kind="split", status="succeeded", branch=name
            )
        if index < converters:
            order(person, "50.00", "2026-03-07")
        elif index < converters + late:
            order(person, "80.00", "2026-03-15")


def test_conversion_rates_intervals_and_sentences_match_the_hand_computed_ones():
    workflow = ab_workflow()
    group(workflow, "A", 40, 10, late=5)
    group(workflow, "B", 40, 20)
    group(workflow, "holdout", 40, 6)
    # a customer skipped for another reason is not in any group
    WorkflowRun.objects.create(
        workflow=workflow,
        kind="event",
        customer=customer(),
        status="skipped",
        skip_reason="trigger filter is false",
        created_at=at("2026-03-05"),
    )

    services.rollups_refresh()  # the lift reads its rollup
    lift = lift_measure(workflow, PERIOD, 7)

    assert [(g.name, g.customers, g.converters, round(g.revenue_per_customer, 2)) for g in lift.groups] == [
        ("Holdout", 40, 6, 7.5),
        ("A", 40, 10, 12.5),
        ("B", 40, 20, 25.0),
    ]
    by_pair = {(c.group, c.control): c for c in lift.comparisons}
    a, b, ab = by_pair[("A", "Holdout")], by_pair[("B", "Holdout")], by_pair[("B", "A")]
    # p_A - p_H = 0.10, se = sqrt(.25·.75/40 + .15·.85/40) = 0.088741 → ±17.39 points
    assert (a.rate_points, a.rate_low, a.rate_high, a.significant) == (10.0, -7.39, 27.39, False)
    # p_B - p_H = 0.35, se = sqrt(.5·.5/40 + .15·.85/40) = 0.097147 → ±19.04 points
    assert (b.rate_points, b.rate_low, b.rate_high, b.significant) == (35.0, 15.96, 54.04, True)
    # p_B - p_A = 0.25, se = sqrt(.5·.5/40 + .25·.75/40) = 0.104583 → ±20.50 points
    assert (ab.rate_points, ab.rate_low, ab.rate_high, ab.significant) == (25.0, 4.5, 45.5, True)
    assert b.revenue_diff == 17.5
    assert b.sentence.startswith(
        "Branch B converts 35.0 points better than the holdout, 95 % interval 16.0 to 54.0: significant."
    )
    assert "not significant (could be chance)" in a.sentence

    # a 14-day window counts the late orders of group A too
    wide = lift_measure(workflow, PERIOD, 14)
    assert [(g.name, g.converters) for g in wide.groups] == [("Holdout", 6), ("A", 15), ("B", 20)]


def test_a_small_sample_is_called_too_small():
    workflow = ab_workflow()
    group(workflow, "A", 12, 3)
    group(workflow, "B", 12, 6)
    services.rollups_refresh()
    lift = lift_measure(workflow, PERIOD, 7)
    assert [c.too_small for c in lift.comparisons] == [True]
    assert "the sample is too small to tell" in lift.comparisons[0].sentence


def test_the_workflows_report_page_api_and_csv(django_user_model):
    workflow = ab_workflow()
    group(workflow, "A", 30, 6)
    group(workflow, "B", 30, 12)
    services.rollups_refresh()
    report = workflows_report(PERIOD, workflow, 7)
    assert [row["branch"] for row in report.table("branches").rows] == ["A", "B"]
    assert report.verdicts and report.verdicts[0].startswith("Branch B converts")
    client = APIClient()
    client.force_login(UserFactory(username="boss"))
    page = client.get(f"/admin/reports/workflows/?start=2026-03-01&end=2026-03-31&workflow={workflow.pk}")
    assert page.status_code == 200
    assert b"Branch B converts" in page.content
    csv = client.get(
        f"/admin/reports/workflows/?start=2026-03-01&end=2026-03-31&workflow={workflow.pk}&csv=conversions"
    )
    assert csv.content.decode().splitlines()[1:] == ["A,30,6,20.0,10.00", "B,30,12,40.0,20.00"]
    api = client.get(f"/api/v1/reports/workflows/?start=2026-03-01&end=2026-03-31&workflow={workflow.pk}&window=7")
    assert api.status_code == 200
    assert api.json()["tables"][-2]["rows"][1]["converters"] == 12
    assert client.get("/api/v1/reports/workflows/?workflow=999999").json()["errors"][0]["path"] == "workflow"
    assert client.get("/api/v1/reports/workflows/?window=0").status_code == 400
    assert client.get("/admin/reports/workflows/?workflow=abc").status_code == 400


def test_the_rollup_follows_a_late_order_a_refund_and_a_cancellation_on_the_next_refresh():
    workflow = ab_workflow()
    group(workflow, "A", 3, 1)
    group(workflow, "B", 3, 0)
    services.rollups_refresh()
    assert [(g.name, g.converters, g.revenue) for g in lift_measure(workflow, PERIOD, 7).groups] == [
        ("A", 1, 50.0),
        ("B", 0, 0.0),
    ]
    b_run = WorkflowRun.objects.filter(workflow=workflow, steps__branch="B").order_by("pk").first()

    late = order(b_run.customer, "30.00", "2026-03-06")  # a late import of an order one day after the run
    a_order = Order.objects.get(customer__workflow_runs__steps__branch="A")
    customer_services.refund_create(order=a_order, amount=Decimal("20.00"))
    services.rollups_refresh()
    assert [(g.name, g.converters, g.revenue) for g in lift_measure(workflow, PERIOD, 7).groups] == [
        ("A", 1, 30.0),
        ("B", 1, 30.0),
    ]

    customer_services.order_cancel(order=late)
    services.rollups_refresh()
    assert [(g.name, g.converters) for g in lift_measure(workflow, PERIOD, 7).groups] == [("A", 1), ("B", 0)]


def _raw_groups(workflow, window_days):
    """The reference: each customer's first run in PERIOD, conversions counted straight from the orders."""
    first = {}
    for run in WorkflowRun.objects.filter(workflow=workflow).order_by("customer_id", "created_at", "pk"):
        if run.status == "skipped" and run.skip_reason != HELD_OUT:
            continue
        first.setdefault(run.customer_id, run)
    groups = {}
    for run in first.values():
        step = run.steps.filter(kind="split").first()
        name = "Holdout" if run.status == "skipped" else (step.branch if step else "Treated")
        orders = Order.objects.filter(
            customer_id=run.customer_id,
            placed_at__gt=run.created_at,
            placed_at__lte=run.created_at + timedelta(days=window_days),
        ).exclude(status="cancelled")
        entry = groups.setdefault(name, [0, 0, Decimal("0")])
        entry[0] += 1
        entry[1] += orders.exists()
        entry[2] += sum((o.total_shop - o.refunded_total_shop for o in orders), Decimal("0"))
    return {name: (count, converted, round(float(revenue), 2)) for name, (count, converted, revenue) in groups.items()}


def test_the_rollup_matches_the_raw_runs_and_orders_on_generated_data():
    rng = random.Random(7)
    workflow = ab_workflow()
    for _ in range(60):
        person = customer()
        for _run in range(rng.randint(1, 2)):
            held = rng.random() < 0.2
            started = at("2026-03-05") + timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 23))
            run = WorkflowRun.objects.create(
                workflow=workflow,
                kind="event",
                customer=person,
                status="skipped" if held else "succeeded",
                skip_reason=HELD_OUT if held else "",
                created_at=started,
            )
            if not held:
                WorkflowRunStep.objects.create(
                    run=run, path="steps[0]", step_id="ab", kind="split", status="succeeded", branch=rng.choice("AB")
                )
        for _order in range(rng.randint(0, 3)):
            placed = at("2026-03-05") + timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))
            created = order(person, f"{rng.randint(5, 90)}.00", placed.date().isoformat())
            if rng.random() < 0.2:
                customer_services.order_cancel(order=created)
    services.rollups_refresh()

    for window in (1, 7, 30):
        measured = {
            g.name: (g.customers, g.converters, round(g.revenue, 2))
            for g in lift_measure(workflow, PERIOD, window).groups
        }
        assert measured == _raw_groups(workflow, window), window


def _ab_run(workflow, person, day, branch="A"):
    run = WorkflowRun.objects.create(
        workflow=workflow, kind="event", customer=person, status="succeeded", created_at=at(day)
    )
    WorkflowRunStep.objects.create(
        run=run, path="steps[0]", step_id="ab", kind="split", status="succeeded", branch=branch
    )
    return run


def test_a_customer_is_exposed_once_per_90_days_and_a_late_earlier_run_moves_the_exposure():
    workflow = ab_workflow()
    person = customer()
    for day in ("2026-01-05", "2026-01-20", "2026-04-20"):  # 15 days later: the same exposure; 105 days: a new one
        _ab_run(workflow, person, day)
    order(person, "40.00", "2026-01-21")  # a day after the second run, 16 days after the first
    services.rollups_refresh()
    spring = Period(date(2026, 1, 1), date(2026, 4, 30))

    assert [(g.name, g.customers, g.converters, g.revenue) for g in lift_measure(workflow, spring, 30).groups] == [
        ("A", 2, 1, 40.0)
    ]
    assert [(g.name, g.converters) for g in lift_measure(workflow, spring, 7).groups] == [("A", 0)]
    # the run of 20 January is no exposure: a period around it alone has nobody
    assert lift_measure(workflow, Period(date(2026, 1, 15), date(2026, 1, 31)), 30).groups == []

    _ab_run(workflow, person, "2025-12-30")  # recorded late: now the first exposure; 5 January is inside its 90 days
    services.rollups_refresh()

    assert [(g.name, g.customers, g.converters) for g in lift_measure(workflow, spring, 30).groups] == [("A", 1, 0)]
    assert [
        (g.name, g.customers, g.converters)
        for g in lift_measure(workflow, Period(date(2025, 12, 1), date(2025, 12, 31)), 30).groups
    ] == [("A", 1, 1)]
