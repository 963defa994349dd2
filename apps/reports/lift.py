"""
The workflows report and its lift: runs per day (rollups), branch split, and — for one workflow — conversion
rate and revenue per customer after the run, per A/B branch and for the holdout, compared with a 95 %
interval and a plain sentence.

Who is in which group: each customer's first event run of the workflow in the period. A run skipped as
"held out" puts the customer in the holdout; a run that took a split step puts them in that branch (the
first split of the workflow); any other admitted run is "treated"; runs skipped for another reason (filter
false, limits) are left out — those customers were never in the audience. A customer converts when they
place an order (not cancelled) within `window` days after the run started; their revenue is the shop-currency
net total of those orders. This reads the runs of one workflow and the (customer, placed_at) index of orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from apps.automations.choices import StepKind
from apps.automations.models import Workflow, WorkflowRunStep
from loyalty_site.lib.money import shop_currency
from loyalty_site.lib.stats import mean_difference, proportion_difference, too_small

from .models import DailyWorkflow, RunConversion, RunConversionDay
from .periods import day_start
from .selectors import Chart, Column, Figure, Period, Report, Table, runs_table

HOLDOUT = "Holdout"
TREATED = "Treated"
ZERO = Decimal("0.00")
MAX_WORKFLOWS = 100


@dataclass
class Group:
    name: str
    customers: int = 0
    converters: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0
    order: int = 0

    @property
    def rate(self) -> float:
        return self.converters / self.customers if self.customers else 0.0

    @property
    def revenue_per_customer(self) -> float:
        return self.revenue / self.customers if self.customers else 0.0


@dataclass
class Comparison:
    group: str
    control: str
    too_small: bool
    rate_points: float | None = None
    rate_low: float | None = None
    rate_high: float | None = None
    significant: bool = False
    revenue_diff: float | None = None
    revenue_low: float | None = None
    revenue_high: float | None = None
    revenue_significant: bool = False
    sentence: str = ""


@dataclass
class Lift:
    groups: list[Group] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)


def _net_total() -> ExpressionWrapper:
    return ExpressionWrapper(
        F("total_shop") - Coalesce(F("refunded_total_shop"), Value(ZERO)),
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )


def workflow_groups(workflow: Workflow, period: Period, window_days: int) -> list[Group]:
    """
    Customers of the workflow's runs in the period by group, with conversions and revenue after the run — read
    from the lift's rollup (`conversions.py`: one row per run, one per day after it with orders), as of the last
    rollup refresh.
    """
    within = Q(created_at__gte=day_start(period.start), created_at__lt=day_start(period.end + timedelta(days=1)))
    runs = (
        RunConversion.objects.filter(within, workflow=workflow)
        .order_by("customer_id", "created_at", "run_id")
        .values_list("run_id", "customer_id", "held_out", "branch")
    )
    days = (
        RunConversionDay.objects.filter(
            conversion__workflow=workflow,
            conversion__created_at__gte=day_start(period.start),
            conversion__created_at__lt=day_start(period.end + timedelta(days=1)),
            offset__lte=window_days,
        )
        .values("conversion_id")
        .annotate(revenue=Sum("revenue"))
        .values_list("conversion_id", "revenue")
        .order_by()
    )
    converted: dict[int, Decimal] = dict(days)
    groups: dict[str, Group] = {}
    branch_order = {str(branch.get("name")): index for index, branch in enumerate(_split_branches(workflow.definition))}
    seen: set[int] = set()
    for run_id, customer_id, held, branch_name in runs.iterator(chunk_size=5000):
        if customer_id in seen:
            continue
        seen.add(customer_id)
        if held:
            name, order = HOLDOUT, -1
        elif branch_name:
            name, order = str(branch_name), branch_order.get(str(branch_name), len(branch_order))
        else:
            name, order = TREATED, 0
        group = groups.setdefault(name, Group(name, order=order))
        group.customers += 1
        money = float(converted.get(run_id) or 0)
        if run_id in converted:
            group.converters += 1
        group.revenue += money
        group.revenue_squares += money * money
    return sorted(groups.values(), key=lambda group: (group.order, group.name))


def _split_branches(definition: Any) -> list[dict[str, Any]]:
    from apps.automations.definitions import steps_walk

    for _path, step in steps_walk((definition or {}).get("steps") or []):
        if isinstance(step, dict) and isinstance(step.get("split"), list):
            return [branch for branch in step["split"] if isinstance(branch, dict)]
    return []


def _points(value: float) -> str:
    return f"{abs(value) * 100:.1f}"


def compare(group: Group, control: Group, *, currency: str) -> Comparison:
    """One group against the control: conversion rate in points and revenue per customer, 95 % intervals."""
    label = "The holdout" if group.name == HOLDOUT else f"Branch {group.name}"
    against = "the holdout" if control.name == HOLDOUT else f"branch {control.name}"
    if too_small(group.converters, group.customers, control.converters, control.customers):
        return Comparison(
            group.name,
            control.name,
            True,
            sentence=(
                f"{label} vs {against}: the sample is too small to tell ({group.customers} and"
                f" {control.customers} customers, {group.converters} and {control.converters} conversions; at"
                " least 30 customers and 5 conversions and non-conversions per group are needed)."
            ),
        )
    rate = proportion_difference(group.converters, group.customers, control.converters, control.customers)
    money = mean_difference(
        group.revenue,
        group.revenue_squares,
        group.customers,
        control.revenue,
        control.revenue_squares,
        control.customers,
    )
    direction = "better" if rate.estimate >= 0 else "worse"
    verdict = "significant" if rate.significant else "not significant (could be chance)"
    sentence = (
        f"{label} converts {_points(rate.estimate)} points {direction} than {against}, 95 % interval"
        f" {rate.low * 100:.1f} to {rate.high * 100:.1f}: {verdict}. Revenue per customer differs by"
        f" {money.estimate:+.2f} {currency} (95 % interval {money.low:.2f} to {money.high:.2f})."
    )
    return Comparison(
        group.name,
        control.name,
        False,
        rate_points=round(rate.estimate * 100, 2),
        rate_low=round(rate.low * 100, 2),
        rate_high=round(rate.high * 100, 2),
        significant=rate.significant,
        revenue_diff=round(money.estimate, 2),
        revenue_low=round(money.low, 2),
        revenue_high=round(money.high, 2),
        revenue_significant=money.significant,
        sentence=sentence,
    )


def lift_measure(workflow: Workflow, period: Period, window_days: int) -> Lift:
    """Groups and their comparisons: every branch against the holdout when there is one, else against the
    first branch."""
    groups = workflow_groups(workflow, period, window_days)
    lift = Lift(groups=groups)
    if len(groups) < 2:
        return lift
    holdout = next((group for group in groups if group.name == HOLDOUT), None)
    control = holdout or groups[0]
    for group in groups:
        if group is not control:
            lift.comparisons.append(compare(group, control, currency=shop_currency()))
    if holdout is not None:
        branches = [group for group in groups if group is not holdout]
        lift.comparisons += [
            compare(group, branches[0], currency=shop_currency()) for group in branches[1:] if len(branches) > 1
        ]
    return lift


def workflows_report(period: Period, workflow: Workflow | None = None, window_days: int = 7) -> Report:
    """Runs per workflow and per day; for one workflow also the branch split, conversions and the lift."""
    report = Report("workflows", "Workflows", period, shop_currency())
    rows = DailyWorkflow.objects.filter(day__gte=period.start, day__lte=period.end)
    per_workflow = list(
        rows.values("workflow_id", "workflow__name")
        .annotate(s=Sum("succeeded"), k=Sum("skipped"), h=Sum("held_out"), f=Sum("failed"), p=Sum("in_progress"))
        .order_by("-s", "workflow__name")[:MAX_WORKFLOWS]
    )
    report.tables.append(
        Table(
            "workflows",
            "Runs per workflow in the period",
            [
                Column("workflow", "Workflow", "text"),
                Column("succeeded", "Succeeded"),
                Column("skipped", "Skipped"),
                Column("held_out", "Held out"),
                Column("failed", "Failed"),
                Column("in_progress", "In progress"),
            ],
            [
                {
                    "workflow": row["workflow__name"],
                    "workflow_id": row["workflow_id"],
                    "succeeded": row["s"],
                    "skipped": row["k"],
                    "held_out": row["h"],
                    "failed": row["f"],
                    "in_progress": row["p"],
                }
                for row in per_workflow
            ],
        )
    )
    report.tables.append(runs_table(period, workflow))
    report.charts.append(
        Chart("runs", "Runs per day", "bar", "day", ["succeeded", "skipped", "held_out", "failed"], True)
    )
    if workflow is None:
        report.notes.append("Choose a workflow to see its branch split, conversions after the run and lift.")
        return report
    report.title = f"Workflow: {workflow.name}"
    split = (
        WorkflowRunStep.objects.filter(
            run__workflow=workflow,
            run__created_at__gte=_start(period),
            run__created_at__lt=_end(period),
            kind__in=(StepKind.CONDITION, StepKind.SPLIT),
        )
        .values("path", "step_id", "branch")
        .annotate(runs=Count("id"))
        .order_by("path", "branch")
    )
    report.tables.append(
        Table(
            "branches",
            "Branch split (runs through each branch of each condition and A/B split)",
            [
                Column("step", "Step", "text"),
                Column("path", "Path", "text"),
                Column("branch", "Branch", "text"),
                Column("runs", "Runs"),
            ],
            [
                {"step": row["step_id"], "path": row["path"], "branch": row["branch"], "runs": row["runs"]}
                for row in split
            ],
        )
    )
    lift = lift_measure(workflow, period, window_days)
    report.tables.append(
        Table(
            "conversions",
            f"Conversions within {window_days} days after the run",
            [
                Column("group", "Group", "text"),
                Column("customers", "Customers"),
                Column("converters", "Converted"),
                Column("conversion_rate", "Conversion rate", "percent"),
                Column("revenue_per_customer", "Revenue per customer", "money"),
            ],
            [
                {
                    "group": group.name,
                    "customers": group.customers,
                    "converters": group.converters,
                    "conversion_rate": Decimal(str(round(group.rate * 100, 1))),
                    "revenue_per_customer": Decimal(str(round(group.revenue_per_customer, 2))).quantize(
                        Decimal("0.01")
                    ),
                }
                for group in lift.groups
            ],
        )
    )
    if lift.groups:
        report.charts.append(Chart("conversions", "Conversion rate by group", "bar", "group", ["conversion_rate"]))
    report.tables.append(
        Table(
            "lift",
            "Lift (95 % intervals)",
            [
                Column("group", "Group", "text"),
                Column("control", "Against", "text"),
                Column("rate_points", "Conversion difference (points)"),
                Column("rate_low", "Low"),
                Column("rate_high", "High"),
                Column("revenue_diff", "Revenue per customer difference", "money"),
                Column("verdict", "Verdict", "text"),
            ],
            [
                {
                    "group": comparison.group,
                    "control": comparison.control,
                    "rate_points": comparison.rate_points,
                    "rate_low": comparison.rate_low,
                    "rate_high": comparison.rate_high,
                    "revenue_diff": None if comparison.revenue_diff is None else Decimal(str(comparison.revenue_diff)),
                    "verdict": "too small"
                    if comparison.too_small
                    else ("significant" if comparison.significant else "not significant"),
                    "sentence": comparison.sentence,
                }
                for comparison in lift.comparisons
            ],
        )
    )
    held = next((group for group in lift.groups if group.name == HOLDOUT), None)
    report.figures += [
        Figure("customers", "Customers in the period", sum(group.customers for group in lift.groups)),
        Figure("held_out", "Held out", held.customers if held else 0),
    ]
    report.verdicts = [comparison.sentence for comparison in lift.comparisons] or [
        "No comparison yet: the workflow needs an A/B split or a holdout, and runs in the period."
    ]
    return report


def _start(period: Period) -> Any:
    return day_start(period.start)


def _end(period: Period) -> Any:
    return day_start(period.end + timedelta(days=1))
