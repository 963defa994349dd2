"""
Reads of the dashboard and the reports. Every figure comes from the rollup tables (apps/reports/models.py)
except the workflow conversions and the lift, which read runs of one workflow in the period over the
(customer, placed_at) index of orders. Each report is a `Report`: headline figures (with the previous
period), tables (what the table view, the CSV export and the API show) and charts drawn from those tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Max, Sum
from django.utils import timezone

from apps.automations.models import Workflow
from apps.campaigns.models import Campaign, Segment
from apps.campaigns.promotions.choices import LimitMeasure, LimitPeriod, LimitScope
from apps.campaigns.promotions.models import Limit, LimitCounter
from apps.loyalty.choices import RewardKind
from apps.loyalty.models import Program, Reward
from loyalty_site.lib.money import shop_currency

from .models import CohortMonth, DailyCampaign, DailyFigures, DailySegment, DailyTier, DailyTierMove, DailyWorkflow
from .models import ExpiryMonth as ExpiryMonthRow

MAX_RANGE_DAYS = 3 * 366
MONEY_REWARDS = (RewardKind.FIXED_DISCOUNT, RewardKind.GIFT_CARD, RewardKind.CASH_BACK)
ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


@dataclass
class Column:
    key: str
    label: str
    kind: str = "number"  # number | money | percent | text | date


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]


@dataclass
class Chart:
    table: str
    title: str
    kind: str  # line | bar
    x: str
    series: list[str]
    stacked: bool = False


@dataclass
class Figure:
    key: str
    label: str
    value: Any
    previous: Any = None
    kind: str = "number"

    @property
    def change(self) -> Decimal | None:
        """Change against the previous period in percent (None when there is nothing to compare with)."""
        if self.previous in (None, 0) or self.value is None:
            return None
        return ((Decimal(self.value) - Decimal(self.previous)) / abs(Decimal(self.previous)) * 100).quantize(
            Decimal("0.1")
        )


@dataclass
class Report:
    key: str
    title: str
    period: Period
    currency: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)  # the lift's plain sentences

    def table(self, name: str) -> Table | None:
        return next((table for table in self.tables if table.name == name), None)

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, dict):
                return {key: plain(item) for key, item in value.items()}
            if isinstance(value, list):
                return [plain(item) for item in value]
            return value

        return plain(
            {
                "report": self.key,
                "title": self.title,
                "currency": self.currency,
                "period": {"start": self.period.start, "end": self.period.end},
                "previous_period": {"start": self.period.previous().start, "end": self.period.previous().end},
                "figures": [{**asdict(figure), "change_percent": figure.change} for figure in self.figures],
                "tables": [asdict(table) for table in self.tables],
                "charts": [asdict(chart) for chart in self.charts],
                "notes": self.notes,
                "verdicts": self.verdicts,
            }
        )


def default_period(today: date | None = None) -> Period:
    today = today or timezone.localdate()
    return Period(today - timedelta(days=29), today)


def point_value() -> Decimal:
    """
    What one point is worth in the shop currency, for the liability: `REPORTS_POINT_VALUE` when set, else the
    best rate among active money rewards (value ÷ points cost — what a member can get at most), else 0.01.
    """
    configured = getattr(settings, "REPORTS_POINT_VALUE", None)
    if configured:
        return Decimal(str(configured))
    best = ZERO
    for value, cost in Reward.objects.filter(is_active=True, kind__in=MONEY_REWARDS, value__gt=0).values_list(
        "value", "points_cost"
    ):
        best = max(best, Decimal(value) / Decimal(cost))
    return best or CENT


def _money(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


def _ratio(part: Any, whole: Any) -> Decimal | None:
    """part ÷ whole in percent with one decimal (None when whole is 0)."""
    if not whole:
        return None
    return (Decimal(part or 0) / Decimal(whole) * 100).quantize(Decimal("0.1"))


def _totals(period: Period) -> dict[str, Any]:
    from .services import FIGURE_FIELDS

    totals = DailyFigures.objects.filter(day__gte=period.start, day__lte=period.end).aggregate(
        **{name: Sum(name) for name in FIGURE_FIELDS}
    )
    return {name: value or 0 for name, value in totals.items()}


def _as_of(day: date) -> dict[str, Any]:
    """Cumulative figures up to the end of `day`: members and outstanding points."""
    cumulative = DailyFigures.objects.filter(day__lte=day).aggregate(
        members=Sum("new_members"), active=Sum("active_delta"), pending=Sum("pending_delta"), debt=Sum("debt_delta")
    )
    latest = (
        DailyFigures.objects.filter(day__lte=day, active_members_30d__isnull=False)
        .order_by("-day")
        .values_list("active_members_30d", flat=True)
        .first()
    )
    return {
        "members": cumulative["members"] or 0,
        "points": cumulative["active"] or 0,
        "pending": cumulative["pending"] or 0,
        "debt": cumulative["debt"] or 0,
        "active_members": latest,
    }


def _roi(order_value: Any, cost: Any) -> Decimal | None:
    """(order value - discount) ÷ discount, in percent."""
    if not cost:
        return None
    return ((Decimal(order_value) - Decimal(cost)) / Decimal(cost) * 100).quantize(Decimal("0.1"))


def _days(period: Period) -> list[date]:
    return [period.start + timedelta(days=offset) for offset in range(period.days)]


def dashboard(period: Period) -> Report:
    """The home dashboard: headline figures against the previous period, and the series over the period."""
    previous = period.previous()
    now_totals, before_totals = _totals(period), _totals(previous)
    now_state, before_state = _as_of(period.end), _as_of(previous.end)
    value = point_value()
    report = Report("dashboard", "Dashboard", period, shop_currency())

    def add(key: str, label: str, current: Any, past: Any, kind: str = "number") -> None:
        report.figures.append(Figure(key, label, current, past, kind))

    add("members", "Members", now_state["members"], before_state["members"])
    add(
        "active_members",
        "Active members (ordered in 30 days)",
        now_state["active_members"],
        before_state["active_members"],
    )
    for side, label in (("members", "Revenue from members"), ("non_members", "Revenue from non-members")):
        add(
            f"revenue_{side}",
            label,
            _money(now_totals[f"revenue_{side}"]),
            _money(before_totals[f"revenue_{side}"]),
            "money",
        )
    add("points_issued", "Points issued", now_totals["points_issued"], before_totals["points_issued"])
    add("points_redeemed", "Points redeemed", now_totals["points_redeemed"], before_totals["points_redeemed"])
    add("points_expired", "Points expired", now_totals["points_expired"], before_totals["points_expired"])
    add(
        "liability",
        "Outstanding points liability",
        _money(Decimal(now_state["points"]) * value),
        _money(Decimal(before_state["points"]) * value),
        "money",
    )
    add(
        "redemption_rate",
        "Redemption rate (redeemed ÷ issued)",
        _ratio(now_totals["points_redeemed"], now_totals["points_issued"]),
        _ratio(before_totals["points_redeemed"], before_totals["points_issued"]),
        "percent",
    )
    add(
        "reward_cost",
        "Reward and discount cost",
        _money(now_totals["reward_cost"] + now_totals["discount_cost"]),
        _money(before_totals["reward_cost"] + before_totals["discount_cost"]),
        "money",
    )
    add(
        "campaign_roi",
        "Campaign ROI ((order value - discount) ÷ discount)",
        _roi(now_totals["campaign_order_value"], now_totals["discount_cost"]),
        _roi(before_totals["campaign_order_value"], before_totals["discount_cost"]),
        "percent",
    )
    add("tags_added", "Tags added", now_totals["tags_added"], before_totals["tags_added"])

    by_day = {row.day: row for row in DailyFigures.objects.filter(day__gte=period.start, day__lte=period.end)}
    daily_rows = []
    for day in _days(period):
        row = by_day.get(day)
        daily_rows.append(
            {
                "day": day,
                "revenue_members": _money(row.revenue_members if row else 0),
                "revenue_non_members": _money(row.revenue_non_members if row else 0),
                "orders_members": row.orders_members if row else 0,
                "orders_non_members": row.orders_non_members if row else 0,
                "points_issued": row.points_issued if row else 0,
                "points_redeemed": row.points_redeemed if row else 0,
                "points_expired": row.points_expired if row else 0,
                "tags_added": row.tags_added if row else 0,
            }
        )
    report.tables.append(
        Table(
            "daily",
            "Revenue, points and tags per day",
            [
                Column("day", "Day", "date"),
                Column("revenue_members", "Revenue, members", "money"),
                Column("revenue_non_members", "Revenue, non-members", "money"),
                Column("orders_members", "Orders, members"),
                Column("orders_non_members", "Orders, non-members"),
                Column("points_issued", "Points issued"),
                Column("points_redeemed", "Points redeemed"),
                Column("points_expired", "Points expired"),
                Column("tags_added", "Tags added"),
            ],
            daily_rows,
        )
    )
    report.charts.append(
        Chart(
            "daily", "Revenue: members vs non-members", "bar", "day", ["revenue_members", "revenue_non_members"], True
        )
    )
    report.charts.append(
        Chart(
            "daily",
            "Points issued, redeemed, expired",
            "line",
            "day",
            ["points_issued", "points_redeemed", "points_expired"],
        )
    )
    report.tables.append(runs_table(period))
    report.charts.append(
        Chart("runs", "Workflow runs", "bar", "day", ["succeeded", "skipped", "held_out", "failed"], True)
    )
    report.charts.append(Chart("daily", "Tags added", "line", "day", ["tags_added"]))
    segments = segments_table(period)
    report.tables.append(segments)
    if len(segments.columns) > 1:
        report.charts.append(Chart("segments", "Segment sizes", "line", "day", [c.key for c in segments.columns[1:]]))
    report.notes.append(
        f"Money in {report.currency}. Liability values a point at {value} {report.currency}"
        " (REPORTS_POINT_VALUE, else the best money reward's rate)."
    )
    return report


def runs_table(period: Period, workflow: Workflow | None = None) -> Table:
    rows = DailyWorkflow.objects.filter(day__gte=period.start, day__lte=period.end)
    if workflow is not None:
        rows = rows.filter(workflow=workflow)
    sums: dict[date, dict[str, Any]] = {
        row["day"]: dict(row)
        for row in rows.values("day").annotate(
            s=Sum("succeeded"), k=Sum("skipped"), h=Sum("held_out"), f=Sum("failed"), p=Sum("in_progress")
        )
    }
    return Table(
        "runs",
        "Workflow runs per day",
        [
            Column("day", "Day", "date"),
            Column("succeeded", "Succeeded"),
            Column("skipped", "Skipped"),
            Column("held_out", "Held out"),
            Column("failed", "Failed"),
            Column("in_progress", "In progress"),
        ],
        [
            {
                "day": day,
                "succeeded": sums.get(day, {}).get("s", 0),
                "skipped": sums.get(day, {}).get("k", 0),
                "held_out": sums.get(day, {}).get("h", 0),
                "failed": sums.get(day, {}).get("f", 0),
                "in_progress": sums.get(day, {}).get("p", 0),
            }
            for day in _days(period)
        ],
    )


MAX_SEGMENT_SERIES = 8


def segments_table(period: Period) -> Table:
    snapshots = DailySegment.objects.filter(day__gte=period.start, day__lte=period.end)
    segment_ids = list(
        snapshots.values("segment_id").annotate(top=Max("size")).order_by("-top").values_list("segment_id", flat=True)
    )[:MAX_SEGMENT_SERIES]
    names = dict(Segment.objects.filter(pk__in=segment_ids).values_list("pk", "name"))
    sizes = {(row.day, row.segment_id): row.size for row in snapshots.filter(segment_id__in=segment_ids)}
    days = sorted({day for day, _ in sizes})
    return Table(
        "segments",
        "Segment sizes (snapshot of each day's refresh)",
        [Column("day", "Day", "date"), *[Column(f"segment_{pk}", names.get(pk, str(pk))) for pk in segment_ids]],
        [{"day": day, **{f"segment_{pk}": sizes.get((day, pk)) for pk in segment_ids}} for day in days],
    )


def loyalty_report(period: Period) -> Report:
    """Liability and its expiry forecast, tier distribution and movements, points per day."""
    report = Report("loyalty", "Loyalty", period, shop_currency())
    value = point_value()
    state, before = _as_of(period.end), _as_of(period.previous().end)
    report.figures += [
        Figure("points_outstanding", "Outstanding points", state["points"], before["points"]),
        Figure(
            "liability",
            "Liability",
            _money(Decimal(state["points"]) * value),
            _money(Decimal(before["points"]) * value),
            "money",
        ),
        Figure("points_pending", "Pending points", state["pending"], before["pending"]),
        Figure("members", "Members", state["members"], before["members"]),
    ]
    expiry = list(ExpiryMonthRow.objects.all())
    report.tables.append(
        Table(
            "expiry",
            "Expiry forecast (active points by month of expiry)",
            [Column("month", "Month", "date"), Column("points", "Points"), Column("liability", "Value", "money")],
            [
                {"month": row.month, "points": row.points, "liability": _money(Decimal(row.points) * value)}
                for row in expiry
            ],
        )
    )
    report.charts.append(Chart("expiry", "Points expiring per month", "bar", "month", ["points"]))
    latest = DailyTier.objects.filter(day__lte=period.end).aggregate(day=Max("day"))["day"]
    programs = dict(Program.objects.values_list("pk", "name"))
    tiers = list(DailyTier.objects.filter(day=latest).order_by("program_id", "tier_rank")) if latest else []
    report.tables.append(
        Table(
            "tiers",
            f"Members per tier on {latest or '—'}",
            [Column("program", "Program", "text"), Column("tier", "Tier", "text"), Column("members", "Members")],
            [
                {
                    "program": programs.get(row.program_id, ""),
                    "tier": row.tier_name or "(no tier)",
                    "members": row.members,
                }
                for row in tiers
            ],
        )
    )
    report.charts.append(Chart("tiers", "Tier distribution", "bar", "tier", ["members"]))
    moves = (
        DailyTierMove.objects.filter(day__gte=period.start, day__lte=period.end)
        .values("old_tier", "new_tier")
        .annotate(members=Sum("members"))
        .order_by("-members")
    )
    report.tables.append(
        Table(
            "tier_moves",
            "Tier movements in the period",
            [Column("old_tier", "From", "text"), Column("new_tier", "To", "text"), Column("members", "Members")],
            [
                {
                    "old_tier": row["old_tier"] or "(no tier)",
                    "new_tier": row["new_tier"] or "(no tier)",
                    "members": row["members"],
                }
                for row in moves
            ],
        )
    )
    dashboard_daily = dashboard_points(period)
    report.tables.append(dashboard_daily)
    report.charts.append(
        Chart("points", "Points per day", "line", "day", ["issued", "redeemed", "expired", "reversed"])
    )
    report.notes.append(f"A point is valued at {value} {report.currency}.")
    return report


def dashboard_points(period: Period) -> Table:
    by_day = {row.day: row for row in DailyFigures.objects.filter(day__gte=period.start, day__lte=period.end)}
    return Table(
        "points",
        "Points per day",
        [
            Column("day", "Day", "date"),
            Column("issued", "Issued"),
            Column("redeemed", "Redeemed"),
            Column("expired", "Expired"),
            Column("reversed", "Taken back"),
        ],
        [
            {
                "day": day,
                "issued": getattr(by_day.get(day), "points_issued", 0),
                "redeemed": getattr(by_day.get(day), "points_redeemed", 0),
                "expired": getattr(by_day.get(day), "points_expired", 0),
                "reversed": getattr(by_day.get(day), "points_reversed", 0),
            }
            for day in _days(period)
        ],
    )


def campaigns_report(period: Period) -> Report:
    """Per campaign: redemptions, discount, order value influenced, ROI and budget burn; redemptions per day."""
    report = Report("campaigns", "Campaigns", period, shop_currency())
    rows = DailyCampaign.objects.filter(day__gte=period.start, day__lte=period.end)
    per_campaign: dict[int, dict[str, Any]] = {
        row["campaign_id"]: dict(row)
        for row in rows.values("campaign_id").annotate(r=Sum("redemptions"), d=Sum("discount"), v=Sum("order_value"))
    }
    totals = _totals(period)
    before = _totals(period.previous())
    report.figures += [
        Figure("redemptions", "Redemptions", totals["campaign_redemptions"], before["campaign_redemptions"]),
        Figure("discount", "Discount given", _money(totals["discount_cost"]), _money(before["discount_cost"]), "money"),
        Figure(
            "order_value",
            "Order value influenced",
            _money(totals["campaign_order_value"]),
            _money(before["campaign_order_value"]),
            "money",
        ),
        Figure(
            "roi",
            "ROI",
            _roi(totals["campaign_order_value"], totals["discount_cost"]),
            _roi(before["campaign_order_value"], before["discount_cost"]),
            "percent",
        ),
    ]
    burn = _budget_burn()
    campaigns = Campaign.objects.filter(pk__in=set(per_campaign) | set(burn)).order_by("name")
    report.tables.append(
        Table(
            "campaigns",
            "Campaigns in the period",
            [
                Column("campaign", "Campaign", "text"),
                Column("redemptions", "Redemptions"),
                Column("discount", "Discount", "money"),
                Column("order_value", "Order value influenced", "money"),
                Column("roi", "ROI", "percent"),
                Column("budget_burn", "Budget used", "percent"),
            ],
            [
                {
                    "campaign": campaign.name,
                    "redemptions": per_campaign.get(campaign.pk, {}).get("r", 0),
                    "discount": _money(per_campaign.get(campaign.pk, {}).get("d", 0)),
                    "order_value": _money(per_campaign.get(campaign.pk, {}).get("v", 0)),
                    "roi": _roi(
                        per_campaign.get(campaign.pk, {}).get("v", 0), per_campaign.get(campaign.pk, {}).get("d", 0)
                    ),
                    "budget_burn": burn.get(campaign.pk),
                }
                for campaign in campaigns
            ],
        )
    )
    report.charts.append(
        Chart("campaigns", "Discount and order value by campaign", "bar", "campaign", ["discount", "order_value"])
    )
    by_day = {row.day: row for row in DailyFigures.objects.filter(day__gte=period.start, day__lte=period.end)}
    report.tables.append(
        Table(
            "redemptions_daily",
            "Redemptions per day",
            [
                Column("day", "Day", "date"),
                Column("redemptions", "Redemptions"),
                Column("discount", "Discount", "money"),
            ],
            [
                {
                    "day": day,
                    "redemptions": getattr(by_day.get(day), "campaign_redemptions", 0),
                    "discount": _money(getattr(by_day.get(day), "discount_cost", 0)),
                }
                for day in _days(period)
            ],
        )
    )
    report.charts.append(Chart("redemptions_daily", "Redemptions per day", "bar", "day", ["redemptions"]))
    report.notes.append(
        "Order value influenced = order totals of the redemptions (less rolled back). Budget used = the"
        " campaign-wide total budget (discount amount or redemptions) used so far."
    )
    return report


def _budget_burn() -> dict[int, Decimal]:
    """Campaign id → percent of its campaign-wide total budget used (the most used one when several)."""
    burn: dict[int, Decimal] = {}
    limits = Limit.objects.filter(
        scope=LimitScope.CAMPAIGN,
        period=LimitPeriod.TOTAL,
        incentive__isnull=True,
        measure__in=(LimitMeasure.DISCOUNT_AMOUNT, LimitMeasure.REDEMPTIONS, LimitMeasure.ORDER_VALUE),
    )
    used = dict(
        LimitCounter.objects.filter(limit__in=limits, subject="")
        .values("limit_id")
        .annotate(u=Sum("used"))
        .values_list("limit_id", "u")
    )
    for limit in limits:
        percent = _ratio(used.get(limit.pk, 0), limit.limit) or Decimal("0.0")
        burn[limit.campaign_id] = max(burn.get(limit.campaign_id, Decimal("0.0")), percent)
    return burn


def cohorts_report(period: Period) -> Report:
    """Repeat-purchase rate by the month of the first order."""
    report = Report("cohorts", "Cohorts", period, shop_currency())
    rows = list(CohortMonth.objects.all())
    report.tables.append(
        Table(
            "cohorts",
            "Repeat-purchase rate by first-order month",
            [
                Column("month", "First order in", "date"),
                Column("customers", "Customers"),
                Column("repeaters", "Ordered again"),
                Column("repeat_rate", "Repeat rate", "percent"),
            ],
            [
                {
                    "month": row.month,
                    "customers": row.customers,
                    "repeaters": row.repeaters,
                    "repeat_rate": _ratio(row.repeaters, row.customers),
                }
                for row in rows
            ],
        )
    )
    report.charts.append(Chart("cohorts", "Repeat-purchase rate", "bar", "month", ["repeat_rate"]))
    report.notes.append("Cohorts are recomputed whole by each refresh; the date range does not apply to them.")
    return report
