"""
The full rebuild (`reports_rebuild`, set-based on PostgreSQL) writes exactly the rows the incremental refresh writes,
on generated data: runs with A/B branches, holdouts and repeated runs (the 90-day exposure chains), orders with
refunds and cancellations, codes published and campaign holdouts, tags added by workflow runs (tag attribution). Every
rollup table is compared row for row (ids apart; the float `revenue_squares` to 1e-6). A second rebuild changes
nothing (idempotent).
"""

import contextlib
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Model

from apps.automations import services as workflow_services
from apps.automations.choices import HELD_OUT
from apps.automations.models import WorkflowRun, WorkflowRunStep
from apps.campaigns.promotions import services as promo_services
from apps.customers import services as customer_services
from apps.reports import services
from apps.reports.models import (
    CampaignConversion,
    CampaignConversionDay,
    DailyBranch,
    DailyCampaign,
    DailyCampaignLift,
    DailyFigures,
    DailyMessageOrders,
    DailyMessages,
    DailyTierMove,
    DailyWorkflow,
    DailyWorkflowLift,
    RollupState,
    RunConversion,
    RunConversionDay,
)
from apps.tagging import services as tagging_services
from loyalty_site.lib.errors import DomainError
from tests.automations.test_engine_support import definition
from tests.campaigns.promo_helpers import campaign_with

from .helpers import at, customer, order

pytestmark = pytest.mark.django_db

TABLES: list[type[Model]] = [
    DailyFigures,
    DailyCampaign,
    DailyWorkflow,
    DailyBranch,
    DailyTierMove,
    DailyMessages,
    DailyMessageOrders,
    RunConversion,
    RunConversionDay,
    DailyWorkflowLift,
    CampaignConversion,
    CampaignConversionDay,
    DailyCampaignLift,
]


def snapshot() -> dict[str, list[tuple]]:
    """Every rollup row without its id; a campaign exposure's day rows keyed by (campaign, customer), not its id."""
    exposure_of = {
        pk: (c, cu) for pk, c, cu in CampaignConversion.objects.values_list("pk", "campaign_id", "customer_id")
    }
    out = {}
    for model in TABLES:
        fields = [f.attname for f in model._meta.concrete_fields if f.name not in ("id", "refreshed_at")]
        rows = []
        for values in model.objects.values_list(*fields):
            row = dict(zip(fields, values, strict=True))
            if model is CampaignConversionDay:
                row["conversion_id"] = exposure_of[row["conversion_id"]]
            if "revenue_squares" in row:
                row["revenue_squares"] = round(row["revenue_squares"], 6)
            rows.append(tuple(sorted(row.items(), key=lambda item: item[0])))
        out[model.__name__] = sorted(rows, key=repr)
    return out


def generate(rng: random.Random) -> list:
    workflow = workflow_services.workflow_create(
        name="AB",
        definition=definition(
            "event.custom",
            [
                {
                    "id": "ab",
                    "split": [{"name": "A", "percent": 50, "steps": []}, {"name": "B", "percent": 50, "steps": []}],
                }
            ],
        ),
        holdout_percent=20,
    )
    other = workflow_services.workflow_create(name="Plain", definition=definition("event.custom", []))
    campaign = campaign_with(
        "Spring", holdout_percent=40, low_pool_threshold=0, incentives=[{"kind": "fixed_order", "amount": Decimal("5")}]
    )
    promo_services.codes_generate(campaign=campaign, pattern="SPR-#####", count=60)
    people = [customer("2025-10-01") for _ in range(30)]
    orders = []
    tag_rng = random.Random(7)  # its own sequence: the runs, orders and codes stay those of the seed
    for person in people:
        for _ in range(rng.randint(1, 4)):  # repeated runs: some within 90 days of the previous exposure
            day = at("2025-11-01") + timedelta(days=rng.randint(0, 140), hours=rng.randint(0, 23))
            roll = rng.random()
            status, reason = (
                ("skipped", HELD_OUT) if roll < 0.2 else ("skipped", "trigger filter is false") if roll < 0.3
                else ("failed", "") if roll < 0.35 else ("succeeded", "")
            )  # fmt: skip
            run = WorkflowRun.objects.create(
                workflow=rng.choice([workflow, workflow, other]),
                kind="event",
                customer=person,
                status=status,
                skip_reason=reason,
                created_at=day,
            )
            if status == "succeeded" and tag_rng.random() < 0.6:
                with time_machine.travel(day + timedelta(minutes=5), tick=False):
                    tagging_services.tags_add(
                        customer=person,
                        names=[tag_rng.choice(["a", "b", "c"])],
                        source="workflow",
                        source_ref=f"workflow_run:{run.pk}",
                    )
            if status == "succeeded" and run.workflow_id == workflow.pk:
                WorkflowRunStep.objects.create(
                    run=run, path="steps[0]", step_id="ab", kind="split", status="succeeded", branch=rng.choice("AB")
                )
        for _ in range(rng.randint(0, 6)):
            placed = (
                f"2025-{rng.choice(['11', '12'])}-{rng.randint(1, 28):02d}"
                if rng.random() < 0.5
                else (f"2026-0{rng.randint(1, 3)}-{rng.randint(1, 28):02d}")
            )
            orders.append(order(person, f"{rng.randint(5, 200)}.{rng.randint(0, 99):02d}", placed))
        if rng.random() < 0.6:
            published = at("2025-11-01") + timedelta(days=rng.randint(0, 120))
            # a held-out customer is refused and recorded as held out
            with time_machine.travel(published, tick=False), contextlib.suppress(DomainError):
                promo_services.code_publish(campaign=campaign, customer=person, ref=f"t:{person.pk}")
    for placed in rng.sample(orders, 8):
        customer_services.refund_create(order=placed, amount="2.50")
    for placed in rng.sample(orders, 4):
        placed.refresh_from_db()
        if placed.status != "cancelled":
            customer_services.order_cancel(order=placed)
    return orders


def test_the_rebuild_writes_exactly_what_the_incremental_refresh_writes():
    rng = random.Random(1590)
    with time_machine.travel(at("2026-03-25"), tick=False):
        orders = generate(rng)
    assert RunConversion.objects.count() == 0
    # the incremental path over everything: a previous refresh long before any of the data
    RollupState.objects.update_or_create(pk=1, defaults={"last_started_at": at("2025-01-01")})
    with time_machine.travel(at("2026-03-25", 13), tick=False):
        refreshed = services.rollups_refresh()
        assert not refreshed.full
        incremental = snapshot()
        rebuilt = services.rollups_rebuild()
        assert rebuilt.full
        assert snapshot() == incremental
        services.rollups_rebuild()
        assert snapshot() == incremental  # idempotent
    # the data is not trivial: exposure chains, both groups, converters, campaign exposures
    assert RunConversion.objects.filter(exposure=False).exists()
    assert {False, True} <= set(RunConversion.objects.values_list("held_out", flat=True))
    assert DailyWorkflowLift.objects.filter(offset__gt=0, converters__gt=0).exists()
    assert {False, True} <= set(CampaignConversion.objects.values_list("held_out", flat=True))
    assert DailyCampaignLift.objects.filter(offset__gt=0).exists()
    assert DailyMessageOrders.objects.filter(touch="tag").count() > 5

    # late changes (a refund of an old order, a new run, a new order), then a refresh: still equal to a rebuild
    with time_machine.travel(at("2026-03-27"), tick=False):
        late = next(o for o in orders if o.status != "cancelled" and o.placed_at < at("2026-01-01"))
        late.refresh_from_db()
        customer_services.refund_create(order=late, amount="1.00")
        run = WorkflowRun.objects.filter(status="succeeded").first()
        WorkflowRun.objects.create(
            workflow=run.workflow, kind="event", customer=run.customer, status="succeeded", created_at=at("2026-03-26")
        )
        late_run = WorkflowRun.objects.create(
            workflow=run.workflow,
            kind="event",
            customer=run.customer,
            status="succeeded",
            created_at=at("2026-03-27", 0),
        )
        tagging_services.tags_add(
            customer=run.customer, names=["late"], source="workflow", source_ref=f"workflow_run:{late_run.pk}"
        )
        order(run.customer, "42.00", "2026-03-27")  # at noon, 12 hours after the tag
    with time_machine.travel(at("2026-03-27", 13), tick=False):
        services.rollups_refresh()
        after_refresh = snapshot()
        assert DailyMessageOrders.objects.filter(day=date(2026, 3, 27), touch="tag", workflow=run.workflow).exists()
        services.rollups_rebuild()
        assert snapshot() == after_refresh
