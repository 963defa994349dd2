"""
The workflows report and the lift of a workflow or a campaign: runs per day (rollups), branch split, and — for
one workflow or campaign — conversion rate and revenue per exposed customer after the exposure, per A/B branch,
treated, and for the holdout, compared with a 95 % interval and a plain sentence.

Who is in which group (`conversions.py`): an exposure is a workflow event run in the lift audience that is the
customer's first exposure to the workflow in 90 days (a run skipped as "held out" → the holdout; a run that took a
split step → that branch, the workflow's first split; any other admitted run → "treated"; runs skipped for another
reason are left out — those customers were never in the audience), or a customer's first code published by a
campaign ("treated") or first holdout record of the campaign. An exposure converts when the customer places an
order (not cancelled) within `window` days after it; its revenue is the shop-currency net total of those orders.
Everything is read from the per-day lift rollups, never from runs or orders on a page view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Q,
    QuerySet,
    Sum,
)

from apps.automations.models import Workflow
from apps.campaigns.models import Campaign
from loyalty_site.lib.money import shop_currency
from loyalty_site.lib.stats import mean_difference, proportion_difference, too_small

from . import selectors
from .attribution import attribution_by_sender
from .models import DailyBranch, DailyCampaignLift, DailyWorkflow, DailyWorkflowLift
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


def lift_groups(rows: QuerySet[Any], period: Period, window_days: int, *, order: dict[str, int]) -> list[Group]:
    """
    The groups of a lift over the period, from its per-day rollup (`DailyWorkflowLift` / `DailyCampaignLift`):
    exposures in the period, and for each, orders within `window_days` after it. One aggregate over at most 91
    rows per day and group, whatever the number of customers.
    """
    within = Q(offset__gte=1, offset__lte=window_days)
    sums = (
        rows.filter(day__gte=period.start, day__lte=period.end)
        .values("held_out", "branch")
        .annotate(
            exposures=Sum("exposures"),
            converters=Sum("converters", filter=within),
            revenue=Sum("revenue", filter=within),
            squares=Sum("revenue_squares", filter=within),
        )
        .order_by()
    )
    groups: list[Group] = []
    for row in sums:
        if not row["exposures"]:
            continue
        if row["held_out"]:
            name, position = HOLDOUT, -1
        elif row["branch"]:
            name, position = str(row["branch"]), order.get(str(row["branch"]), len(order))
        else:
            name, position = TREATED, 0
        groups.append(
            Group(
                name,
                customers=row["exposures"],
                converters=row["converters"] or 0,
                revenue=float(row["revenue"] or 0),
                revenue_squares=float(row["squares"] or 0),
                order=position,
            )
        )
    return sorted(groups, key=lambda group: (group.order, group.name))


def workflow_groups(workflow: Workflow, period: Period, window_days: int) -> list[Group]:
    """
    The workflow's exposures in the period by group (holdout, each A/B branch, or treated), with conversions and
    revenue within the window after each — read from the lift's per-day rollup as of the last refresh.
    """
    branch_order = {str(branch.get("name")): index for index, branch in enumerate(_split_branches(workflow.definition))}
    return lift_groups(DailyWorkflowLift.objects.filter(workflow=workflow), period, window_days, order=branch_order)


def campaign_groups(campaign: Campaign, period: Period, window_days: int) -> list[Group]:
    """The campaign's exposures in the period: its holdout and the customers who got a code ("Treated")."""
    return lift_groups(DailyCampaignLift.objects.filter(campaign=campaign), period, window_days, order={})


def _split_branches(definition: Any) -> list[dict[str, Any]]:
    from apps.automations.definitions import steps_walk

    for _path, step in steps_walk((definition or {}).get("steps") or []):
        if isinstance(step, dict) and isinstance(step.get("split"), list):
            return [branch for branch in step["split"] if isinstance(branch, dict)]
    return []


def _points(value: float) -> str:
    return f"{abs(value) * 100:.1f}"


def _label(name: str) -> tuple[str, str]:
    """How a sentence names a group, and its verb."""
    if name == HOLDOUT:
        return "The holdout", "converts"
    if name == TREATED:
        return "Treated customers", "convert"
    return f"Branch {name}", "converts"


def compare(group: Group, control: Group, *, currency: str) -> Comparison:
    """One group against the control: conversion rate in points and revenue per customer, 95 % intervals."""
    label, verb = _label(group.name)
    against = {HOLDOUT: "the holdout", TREATED: "treated customers"}.get(control.name, f"branch {control.name}")
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
        f"{label} {verb} {_points(rate.estimate)} points {direction} than {against}, 95 % interval"
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


def lift_compare(groups: list[Group]) -> Lift:
    """Every group against the holdout when there is one (else against the first branch), and branches with each
    other."""
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


def lift_measure(workflow: Workflow, period: Period, window_days: int) -> Lift:
    """A workflow's groups and their comparisons."""
    return lift_compare(workflow_groups(workflow, period, window_days))


def campaign_lift_measure(campaign: Campaign, period: Period, window_days: int) -> Lift:
    """A campaign's treated customers against its holdout."""
    return lift_compare(campaign_groups(campaign, period, window_days))


def lift_tables(report: Report, lift: Lift, window_days: int, *, what: str) -> None:
    """The conversions and lift tables, the chart, the figures and the sentences of a lift, added to a report."""
    report.tables.append(
        Table(
            "conversions",
            f"Conversions within {window_days} days after the {what}",
            [
                Column("group", "Group", "text"),
                Column("customers", "Customers exposed"),
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
                Column("revenue_low", "Low", "money"),
                Column("revenue_high", "High", "money"),
                Column("verdict", "Verdict", "text"),
            ],
            [
                {
                    "group": comparison.group,
                    "control": comparison.control,
                    "rate_points": comparison.rate_points,
                    "rate_low": comparison.rate_low,
                    "rate_high": comparison.rate_high,
                    "revenue_diff": _decimal(comparison.revenue_diff),
                    "revenue_low": _decimal(comparison.revenue_low),
                    "revenue_high": _decimal(comparison.revenue_high),
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
        Figure("customers", "Customers exposed in the period", sum(group.customers for group in lift.groups)),
        Figure("held_out", "Held out", held.customers if held else 0),
    ]


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


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
    report.tables.append(
        messages_table(period, window_days, owner="workflow", only=None if workflow is None else [workflow.pk])
    )
    report.charts.append(
        Chart("runs", "Runs per day", "bar", "day", ["succeeded", "skipped", "held_out", "failed"], True)
    )
    if workflow is None:
        report.notes.append("Choose a workflow to see its branch split, conversions after the run and lift.")
        return report
    report.title = f"Workflow: {workflow.name}"
    split = (
        DailyBranch.objects.filter(workflow=workflow, day__gte=period.start, day__lte=period.end)
        .values("path", "step_id", "branch")
        .annotate(runs=Sum("runs"))
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
    lift_tables(report, lift, window_days, what="run")
    report.verdicts = [comparison.sentence for comparison in lift.comparisons] or [
        "No comparison yet: the workflow needs an A/B split or a holdout, and runs in the period."
    ]
    return report


def messages_table(period: Period, window_days: int, *, owner: str, only: list[int] | None = None) -> Table:
    """
    Per workflow or campaign: messages sent in the period and the orders credited to it (last touch); for workflows
    also the part of those orders whose last touch was a tag the workflow added. Revenue in the shop currency.
    """
    figures = attribution_by_sender(period.start, period.end, window_days, owner=owner, owner_ids=only)
    model: Any = Workflow if owner == "workflow" else Campaign
    names = dict(model.objects.filter(pk__in=list(figures)).values_list("pk", "name"))
    ranked = sorted(figures.items(), key=lambda item: (-item[1]["revenue"], names.get(item[0], "")))[:MAX_WORKFLOWS]
    tags = owner == "workflow"  # only workflows add tags
    columns = [
        Column(owner, owner.capitalize(), "text"),
        Column("sent", "Messages sent"),
        Column("orders", "Orders attributed"),
        Column("revenue", "Revenue attributed", "money"),
    ]
    if tags:
        columns += [Column("tag_orders", "Of which after a tag"), Column("tag_revenue", "Revenue after a tag", "money")]
    columns.append(Column("revenue_per_message", "Revenue per message", "money"))
    rows = []
    for owner_id, row in ranked:
        after_messages = row["revenue"] - row["tag_revenue"]
        line = {
            owner: names.get(owner_id, str(owner_id)),
            f"{owner}_id": owner_id,
            "sent": row["sent"],
            "orders": row["orders"],
            "revenue": row["revenue"],
        }
        if tags:
            line |= {"tag_orders": row["tag_orders"], "tag_revenue": row["tag_revenue"]}
        line["revenue_per_message"] = (after_messages / row["sent"]).quantize(Decimal("0.01")) if row["sent"] else None
        rows.append(line)
    title = (
        f"Messages sent, tags added and orders within {window_days} days after them (last touch before the order)"
        if tags
        else f"Messages sent and orders within {window_days} days after them (last message before the order)"
    )
    return Table("messages", title, columns, rows)


def campaigns_report(period: Period, campaign: Campaign | None = None, window_days: int = 7) -> Report:
    """The campaigns report; with a campaign also its messages' attribution and its lift (treated vs holdout)."""
    report = selectors.campaigns_report(period)
    report.tables.append(
        messages_table(period, window_days, owner="campaign", only=None if campaign is None else [campaign.pk])
    )
    if campaign is None:
        report.notes.append("Choose a campaign to see its lift: customers who got a code against its holdout.")
        return report
    report.title = f"Campaign: {campaign.name}"
    lift = campaign_lift_measure(campaign, period, window_days)
    lift_tables(report, lift, window_days, what="code was published (or the customer held out)")
    report.verdicts = [comparison.sentence for comparison in lift.comparisons] or [
        "No comparison yet: the campaign needs a holdout (holdout_percent) and codes published in the period."
        if not campaign.holdout_percent
        else "No comparison yet: no code was published and nobody held out in the period."
    ]
    return report
