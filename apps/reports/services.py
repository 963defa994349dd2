"""
The rollup refresh: recompute the daily figures of the days whose source rows changed, set-based.

How a changed day is found (the watermark is when the previous refresh *started*, less an overlap that
covers transactions still open then): orders by `updated_at` (a refund or cancellation saves its order)
→ the day the order was placed; ledger entries, tag audits, tier changes, customers and memberships by
their creation; loyalty redemptions by issue or rollback; promotion redemptions by creation,
redemption or rollback (`rolled_back_at`: a partial rollback lowers the order value and the discount by
the share the rollback recorded); workflow runs by `updated_at` → the day the run started. Each source
is then aggregated with one GROUP BY per source restricted to those days, and the days' rows are replaced (upsert for
`DailyFigures`, delete + insert for the per-campaign/workflow/tier tables). So a late refund of an order
placed on 3 March recomputes 3 March and nothing else. `rollups_rebuild` recomputes every day.

Snapshots (segment sizes, tier distribution, active members, cohorts, expiry forecast) describe *now*:
each refresh writes them for today (local day) and keeps earlier days' snapshots as they were taken.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Case, Count, DecimalField, Exists, F, OuterRef, Q, QuerySet, Sum, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone

from apps.automations.choices import HELD_OUT, RunKind, RunStatus, StepKind
from apps.automations.models import WorkflowRun, WorkflowRunStep
from apps.campaigns.models import RedemptionItem, Segment
from apps.campaigns.promotions.choices import RedemptionStatus as PromoStatus
from apps.campaigns.promotions.models import Redemption as PromoRedemption
from apps.customers.choices import OrderStatus
from apps.customers.models import Customer, DomainEvent, Order, Refund
from apps.loyalty.choices import EntryKind, LotStatus, RedemptionStatus, RewardKind
from apps.loyalty.models import LedgerEntry, Membership, PointLot, Redemption
from apps.tagging.choices import TagAuditAction
from apps.tagging.models import TagAudit

from . import attribution
from .conversions import conversions_refresh
from .models import (
    CohortMonth,
    DailyBranch,
    DailyCampaign,
    DailyFigures,
    DailyMessageOrders,
    DailyMessages,
    DailySegment,
    DailyTier,
    DailyTierMove,
    DailyWorkflow,
    ExpiryMonth,
    RollupState,
)
from .periods import day_start, local_day

# A transaction open when the previous refresh started may commit rows stamped before its watermark.
WATERMARK_OVERLAP = timedelta(minutes=10)
# Changed days are queried as ranges; past this many ranges they are merged (more days, fewer ORs).
MAX_RANGES = 60
MONEY_REWARDS = (RewardKind.FIXED_DISCOUNT, RewardKind.GIFT_CARD, RewardKind.CASH_BACK)
ZERO = Decimal("0.00")
FIGURE_FIELDS = [
    field.name
    for field in DailyFigures._meta.get_fields()
    if field.concrete and field.name not in ("id", "day", "active_members_30d", "refreshed_at")
]


@dataclass
class RefreshResult:
    """What a refresh recomputed: the days (sorted) and how long it took."""

    days: list[date]
    seconds: float
    full: bool


def _ranges(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """Contiguous runs of days as [start, end) instants; merged over the smallest gaps past MAX_RANGES."""
    ordered = sorted(set(days))
    runs: list[list[date]] = []
    for day in ordered:
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    while len(runs) > MAX_RANGES:
        gaps = sorted(range(len(runs) - 1), key=lambda i: (runs[i + 1][0] - runs[i][1]).days)
        i = gaps[0]
        runs[i : i + 2] = [[runs[i][0], runs[i + 1][1]]]
    return [(day_start(first), day_start(last + timedelta(days=1))) for first, last in runs]


def _within(field: str, ranges: list[tuple[datetime, datetime]] | None) -> Q:
    if ranges is None:
        return Q()
    q = Q(pk__in=[])
    for start, end in ranges:
        q |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    return q


def _day(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=timezone.get_current_timezone())


def _money_sum(expression: Any) -> Coalesce:
    return Coalesce(Sum(expression, output_field=DecimalField(max_digits=16, decimal_places=2)), Value(ZERO))


# --- the sources, each aggregated by day (optionally restricted to ranges of days) -------------------------


def _orders(ranges: list[tuple[datetime, datetime]] | None, figures: dict[date, dict[str, Any]]) -> None:
    member = Exists(Membership.objects.filter(customer=OuterRef("customer_id"), joined_at__lte=OuterRef("placed_at")))
    rows = (
        Order.objects.filter(_within("placed_at", ranges))
        .exclude(status=OrderStatus.CANCELLED)
        .annotate(day=_day("placed_at"), member=member)
        .values("day", "member")
        .annotate(
            orders=Count("id"),
            revenue=_money_sum(F("total_shop") - Coalesce(F("refunded_total_shop"), Value(ZERO))),
            refunded=_money_sum("refunded_total_shop"),
        )
        .order_by()
    )
    for row in rows:
        target = figures[row["day"]]
        suffix = "members" if row["member"] else "non_members"
        target[f"orders_{suffix}"] += row["orders"]
        target[f"revenue_{suffix}"] += row["revenue"]
        target["refunded"] += row["refunded"]


def _customers(ranges: list[tuple[datetime, datetime]] | None, figures: dict[date, dict[str, Any]]) -> None:
    for row in (
        Customer.objects.filter(_within("created_at", ranges))
        .annotate(day=_day("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    ):
        figures[row["day"]]["new_customers"] += row["n"]
    for row in (
        Membership.objects.filter(_within("joined_at", ranges))
        .annotate(day=_day("joined_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    ):
        figures[row["day"]]["new_members"] += row["n"]


def _ledger(ranges: list[tuple[datetime, datetime]] | None, figures: dict[date, dict[str, Any]]) -> None:
    rows = (
        LedgerEntry.objects.filter(_within("created_at", ranges))
        .annotate(day=_day("created_at"))
        .values("day", "kind")
        .annotate(active=Sum("active_delta"), pending=Sum("pending_delta"), debt=Sum("debt_delta"))
        .order_by()
    )
    for row in rows:
        target = figures[row["day"]]
        active, pending, debt = row["active"] or 0, row["pending"] or 0, row["debt"] or 0
        target["active_delta"] += active
        target["pending_delta"] += pending
        target["debt_delta"] += debt
        kind = row["kind"]
        if kind == EntryKind.EARN:
            target["points_issued"] += active + pending
        elif kind in (EntryKind.SPEND, EntryKind.ROLLBACK):
            target["points_redeemed"] -= active
        elif kind == EntryKind.EXPIRE:
            target["points_expired"] -= active
        elif kind == EntryKind.REVERSE:
            target["points_reversed"] -= active + pending


def _rewards(ranges: list[tuple[datetime, datetime]] | None, figures: dict[date, dict[str, Any]]) -> None:
    rows = (
        Redemption.objects.filter(_within("issued_at", ranges))
        .exclude(status=RedemptionStatus.ROLLED_BACK)
        .annotate(day=_day("issued_at"))
        .values("day")
        .annotate(
            n=Count("id"),
            cost=_money_sum(Case(When(reward__kind__in=MONEY_REWARDS, then=F("reward__value")), default=Value(ZERO))),
        )
        .order_by()
    )
    for row in rows:
        figures[row["day"]]["rewards_redeemed"] += row["n"]
        figures[row["day"]]["reward_cost"] += row["cost"]


def _promotions(
    ranges: list[tuple[datetime, datetime]] | None, figures: dict[date, dict[str, Any]]
) -> list[DailyCampaign]:
    redeemed = PromoRedemption.objects.filter(_within("redeemed_at", ranges), status=PromoStatus.REDEEMED)
    for totals in (
        redeemed.annotate(day=_day("redeemed_at"))
        .values("day")
        .annotate(
            n=Count("id"),
            discount=_money_sum(F("discount_total") - F("discount_rolled_back")),
            value=_money_sum(F("order_total") - F("rolled_back_total")),
        )
        .order_by()
    ):
        target = figures[totals["day"]]
        target["campaign_redemptions"] += totals["n"]
        target["discount_cost"] += totals["discount"]
        target["campaign_order_value"] += totals["value"]
    # Per campaign: a redemption that applied two incentives of one campaign counts once (its order value too).
    per_campaign: dict[tuple[date, int], DailyCampaign] = {}
    seen: set[tuple[int, int]] = set()
    items = (
        RedemptionItem.objects.filter(redemption__in=redeemed)
        .annotate(day=_day("redemption__redeemed_at"))
        .values_list(
            "day",
            "campaign_id",
            "redemption_id",
            "discount",
            "discount_returned",
            "redemption__order_total",
            "redemption__rolled_back_total",
        )
        .order_by()
    )
    for day, campaign_id, redemption_id, discount, returned, order_total, rolled_back in items.iterator(
        chunk_size=5000
    ):
        row = per_campaign.setdefault((day, campaign_id), DailyCampaign(day=day, campaign_id=campaign_id))
        row.discount += discount - returned
        if (redemption_id, campaign_id) not in seen:
            seen.add((redemption_id, campaign_id))
            row.redemptions += 1
            row.order_value += order_total - rolled_back
    return list(per_campaign.values())


def _runs(ranges: list[tuple[datetime, datetime]] | None) -> list[DailyWorkflow]:
    rows = (
        WorkflowRun.objects.filter(_within("created_at", ranges))
        .exclude(kind=RunKind.TEST)
        .annotate(day=_day("created_at"))
        .values("day", "workflow_id", "status")
        .annotate(
            n=Count("id"),
            held=Count("id", filter=Q(status=RunStatus.SKIPPED, skip_reason=HELD_OUT)),
        )
        .order_by()
    )
    per_workflow: dict[tuple[date, int], DailyWorkflow] = {}
    for row in rows:
        target = per_workflow.setdefault(
            (row["day"], row["workflow_id"]), DailyWorkflow(day=row["day"], workflow_id=row["workflow_id"])
        )
        status = row["status"]
        if status == RunStatus.SUCCEEDED:
            target.succeeded += row["n"]
        elif status == RunStatus.SKIPPED:
            target.held_out += row["held"]
            target.skipped += row["n"] - row["held"]
        elif status in (RunStatus.FAILED, RunStatus.DEAD):
            target.failed += row["n"]
        else:
            target.in_progress += row["n"]
    return list(per_workflow.values())


def _branches(ranges: list[tuple[datetime, datetime]] | None) -> list[DailyBranch]:
    """Runs through each branch of each condition and A/B split, per workflow and day the run started."""
    rows = (
        WorkflowRunStep.objects.filter(
            _within("run__created_at", ranges), kind__in=(StepKind.CONDITION, StepKind.SPLIT)
        )
        .exclude(run__kind=RunKind.TEST)
        .annotate(day=_day("run__created_at"))
        .values("day", "run__workflow_id", "path", "step_id", "branch")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        DailyBranch(
            day=row["day"],
            workflow_id=row["run__workflow_id"],
            path=row["path"],
            step_id=row["step_id"],
            branch=row["branch"],
            runs=row["n"],
        )
        for row in rows
    ]


def _tags(ranges: list[tuple[datetime, datetime]] | None, figures: dict[date, dict[str, Any]]) -> None:
    for row in (
        TagAudit.objects.filter(_within("created_at", ranges), action=TagAuditAction.ADDED)
        .annotate(day=_day("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    ):
        figures[row["day"]]["tags_added"] += row["n"]


def _tier_moves(ranges: list[tuple[datetime, datetime]] | None) -> list[DailyTierMove]:
    rows = (
        DomainEvent.objects.filter(_within("created_at", ranges), name="loyalty.tier_changed")
        .annotate(
            day=_day("created_at"),
            old=Coalesce(KeyTextTransform("old_tier", "payload"), Value(""), output_field=TextField()),
            new=Coalesce(KeyTextTransform("new_tier", "payload"), Value(""), output_field=TextField()),
        )
        .values("day", "old", "new")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        DailyTierMove(day=row["day"], old_tier=row["old"][:64], new_tier=row["new"][:64], members=row["n"])
        for row in rows
    ]


# --- which days changed ------------------------------------------------------------------------------------


def _days_of(queryset: QuerySet[Any], field: str) -> set[date]:
    return set(queryset.annotate(rollup_day=_day(field)).values_list("rollup_day", flat=True).distinct().order_by())


def changed_days(since: datetime) -> set[date]:
    """Every local day whose figures may differ from what the rollups hold, given rows changed since `since`."""
    days: set[date] = set()
    days |= _days_of(Order.objects.filter(updated_at__gte=since), "placed_at")
    days |= _days_of(Order.objects.filter(refunds__in=Refund.objects.filter(created_at__gte=since)), "placed_at")
    days |= _days_of(Customer.objects.filter(created_at__gte=since), "created_at")
    days |= _days_of(Membership.objects.filter(joined_at__gte=since), "joined_at")
    days |= _days_of(LedgerEntry.objects.filter(created_at__gte=since), "created_at")
    days |= _days_of(Redemption.objects.filter(Q(issued_at__gte=since) | Q(rolled_back_at__gte=since)), "issued_at")
    days |= _days_of(
        PromoRedemption.objects.filter(
            Q(created_at__gte=since) | Q(redeemed_at__gte=since) | Q(rolled_back_at__gte=since),
            redeemed_at__isnull=False,
        ),
        "redeemed_at",
    )
    days |= _days_of(WorkflowRun.objects.filter(updated_at__gte=since), "created_at")
    days |= _days_of(TagAudit.objects.filter(created_at__gte=since), "created_at")
    days |= _days_of(DomainEvent.objects.filter(name="loyalty.tier_changed", created_at__gte=since), "created_at")
    days |= attribution.changed_days(since)
    return days


# --- writing -----------------------------------------------------------------------------------------------


def _blank() -> dict[str, Any]:
    return {
        name: (ZERO if isinstance(DailyFigures._meta.get_field(name), DecimalField) else 0) for name in FIGURE_FIELDS
    }


def _days_recompute(days: set[date] | None, *, now: datetime) -> list[date]:
    """Recompute the given days (None: every day that has data) and replace their rollup rows."""
    ranges = None if days is None else _ranges(days)
    figures: dict[date, dict[str, Any]] = defaultdict(_blank)
    for day in days or ():
        figures[day] = _blank()  # a changed day with nothing left still gets its row of zeros
    _orders(ranges, figures)
    _customers(ranges, figures)
    _ledger(ranges, figures)
    _rewards(ranges, figures)
    campaigns = _promotions(ranges, figures)
    _tags(ranges, figures)
    runs = _runs(ranges)
    branches = _branches(ranges)
    moves = _tier_moves(ranges)
    messages = attribution.messages_rows(ranges)
    attributed = attribution.orders_rows(ranges)
    # Merged ranges may cover extra days: their figures are recomputed whole too, so writing them is exact.
    written = sorted(
        set(figures)
        | {row.day for row in campaigns}
        | {row.day for row in runs}
        | {row.day for row in branches}
        | {m.day for m in moves}
        | {m.day for m in messages}
        | {row.day for row in attributed}
    )
    rows = [DailyFigures(day=day, refreshed_at=now, **figures[day]) for day in written]
    with transaction.atomic():
        if days is None:
            # Days without data keep their row (and its snapshot) with the figures zeroed.
            DailyFigures.objects.exclude(day__in=written).update(**_blank(), refreshed_at=now)
            DailyCampaign.objects.all().delete()
            DailyWorkflow.objects.all().delete()
            DailyBranch.objects.all().delete()
            DailyTierMove.objects.all().delete()
            DailyMessages.objects.all().delete()
            DailyMessageOrders.objects.all().delete()
        else:
            DailyCampaign.objects.filter(day__in=written).delete()
            DailyWorkflow.objects.filter(day__in=written).delete()
            DailyBranch.objects.filter(day__in=written).delete()
            DailyTierMove.objects.filter(day__in=written).delete()
            DailyMessages.objects.filter(day__in=written).delete()
            DailyMessageOrders.objects.filter(day__in=written).delete()
        DailyFigures.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["day"],
            update_fields=[*FIGURE_FIELDS, "refreshed_at"],
        )
        DailyCampaign.objects.bulk_create(campaigns, batch_size=1000)
        DailyWorkflow.objects.bulk_create(runs, batch_size=1000)
        DailyBranch.objects.bulk_create(branches, batch_size=1000)
        DailyTierMove.objects.bulk_create(moves, batch_size=1000)
        DailyMessages.objects.bulk_create(messages, batch_size=1000)
        DailyMessageOrders.objects.bulk_create(attributed, batch_size=1000)
    return written


def snapshots_take(*, now: datetime) -> None:
    """Today's snapshots (segment sizes, tiers, active members) and the cohort and expiry tables, replaced."""
    today = local_day(now)
    active = (
        Membership.objects.filter(customer__last_order_at__gt=now - timedelta(days=30))
        .values("customer_id")
        .distinct()
        .count()
    )
    segments = [
        DailySegment(day=today, segment_id=pk, size=size)
        for pk, size in Segment.objects.filter(is_active=True).values_list("pk", "member_count")
    ]
    tiers = [
        DailyTier(
            day=today,
            program_id=row["program_id"],
            tier_name=row["tier__name"] or "",
            tier_rank=-1 if row["tier__rank"] is None else row["tier__rank"],
            members=row["n"],
        )
        for row in Membership.objects.values("program_id", "tier__name", "tier__rank")
        .annotate(n=Count("id"))
        .order_by()
    ]
    cohorts = [
        CohortMonth(month=row["month"], customers=row["n"], repeaters=row["repeat"])
        for row in Customer.objects.filter(first_order_at__isnull=False)
        .annotate(month=TruncMonth("first_order_at", tzinfo=timezone.get_current_timezone()))
        .values("month")
        .annotate(n=Count("id"), repeat=Count("id", filter=Q(orders_count__gte=2)))
        .order_by()
    ]
    expiring = [
        ExpiryMonth(month=row["month"], points=row["points"] or 0)
        for row in PointLot.objects.filter(status=LotStatus.ACTIVE, expires_at__gte=now, remaining__gt=0)
        .annotate(month=TruncMonth("expires_at", tzinfo=timezone.get_current_timezone()))
        .values("month")
        .annotate(points=Sum("remaining"))
        .order_by()
    ]
    with transaction.atomic():
        DailyFigures.objects.update_or_create(day=today, defaults={"active_members_30d": active})
        DailySegment.objects.filter(day=today).delete()
        DailySegment.objects.bulk_create(segments)
        DailyTier.objects.filter(day=today).delete()
        DailyTier.objects.bulk_create(tiers)
        CohortMonth.objects.all().delete()
        CohortMonth.objects.bulk_create(cohorts)
        ExpiryMonth.objects.all().delete()
        ExpiryMonth.objects.bulk_create(expiring)


def _state_locked() -> RollupState:
    RollupState.objects.get_or_create(pk=1)
    return RollupState.objects.select_for_update().get(pk=1)


def rollups_refresh(*, now: datetime | None = None) -> RefreshResult:
    """
    Recompute the days changed since the previous refresh (all days on the first one) and take today's
    snapshots. Two refreshes never overlap: the state row is locked for the duration.
    """
    now = now or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        state = _state_locked()
        since = state.last_started_at
        full = since is None
        days = None if since is None else changed_days(since - WATERMARK_OVERLAP)
        written = _days_recompute(days, now=now) if days is None or days else []
        conversions_refresh(since=None if since is None else since - WATERMARK_OVERLAP)
        snapshots_take(now=now)
        elapsed = time.perf_counter() - started
        state.last_started_at = now
        state.last_finished_at = timezone.now()
        state.last_days = len(written)
        state.last_seconds = elapsed
        state.save()
    return RefreshResult(days=written, seconds=elapsed, full=full)


def rollups_rebuild(*, now: datetime | None = None) -> RefreshResult:
    """Recompute every day from the raw tables (back-fills, imports of history, a changed time zone)."""
    now = now or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        state = _state_locked()
        written = _days_recompute(None, now=now)
        conversions_refresh(since=None)
        snapshots_take(now=now)
        elapsed = time.perf_counter() - started
        state.last_started_at = now
        state.last_finished_at = timezone.now()
        state.last_days = len(written)
        state.last_seconds = elapsed
        state.save()
    return RefreshResult(days=written, seconds=elapsed, full=True)
