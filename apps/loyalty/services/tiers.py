"""
Tiers: the qualifying tier from points earned or amount spent over the program's window, the
downgrade policy (never / at period end / after a grace period), and a manual floor.

Amount spent is the orders' shop-currency amounts (total_shop - refunded_total_shop), so thresholds
are in the shop currency whatever currencies the member paid in.

Semantics of "at period end": a tier qualified for in calendar year Y is kept through Y+1 (the
previous year's figure counts too); for a rolling window the tier is kept for one window length
after it was reached; for lifetime windows the figure only falls through refunds, which apply at once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.db import transaction
from django.db.models import DecimalField, F, OuterRef, QuerySet, Subquery, Sum
from django.utils import timezone

from apps.customers.choices import OrderStatus
from apps.customers.models import Order
from apps.customers.outbox import domain_event_emit
from apps.platform.audit import audit_record, audit_snapshot
from loyalty_site.lib.errors import DomainError

from .. import signals
from ..choices import TierBasis, TierDowngrade, TierWindow
from ..models import Membership, PointLot, Program, Tier
from .ledger import balance_lock


def _year_start(at: datetime, years_back: int = 0) -> datetime:
    local = timezone.localtime(at)
    return local.replace(year=local.year - years_back, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def tier_metric(membership: Membership, start: datetime | None, end: datetime) -> Decimal:
    program = membership.program
    if program.tier_basis == TierBasis.AMOUNT_SPENT:
        orders = Order.objects.filter(customer_id=membership.customer_id, placed_at__lt=end).exclude(
            status=OrderStatus.CANCELLED
        )
        if start is not None:
            orders = orders.filter(placed_at__gte=start)
        # shop-currency amounts only: an order's own currency never enters a sum
        total = orders.aggregate(total=Sum(F("total_shop") - F("refunded_total_shop")))["total"]
    else:
        lots = PointLot.objects.filter(membership=membership, created_at__lt=end)
        if start is not None:
            lots = lots.filter(created_at__gte=start)
        total = lots.aggregate(total=Sum(F("amount") - F("reversed_amount")))["total"]
    return Decimal(total or 0)


def tier_for(tiers: list[Tier], metric: Decimal) -> Tier | None:
    """The highest-ranked tier whose threshold the metric reaches (tiers sorted by rank)."""
    best = None
    for tier in tiers:
        if metric >= tier.threshold:
            best = tier
    return best


def _rank(tier: Tier | None) -> int:
    return -1 if tier is None else tier.rank


def tier_qualifying(membership: Membership, at: datetime, tiers: list[Tier]) -> tuple[Tier | None, Decimal]:
    program = membership.program
    end = at + timedelta(microseconds=1)
    if program.tier_window == TierWindow.LIFETIME:
        metric = tier_metric(membership, None, end)
        return tier_for(tiers, metric), metric
    if program.tier_window == TierWindow.ROLLING_DAYS:
        metric = tier_metric(membership, at - timedelta(days=program.tier_window_days), end)
        return tier_for(tiers, metric), metric
    metric = tier_metric(membership, _year_start(at), end)
    qualifying = tier_for(tiers, metric)
    if program.tier_downgrade == TierDowngrade.PERIOD_END:
        previous = tier_for(tiers, tier_metric(membership, _year_start(at, 1), _year_start(at)))
        if _rank(previous) > _rank(qualifying):
            qualifying = previous
    return qualifying, metric


def _decide(membership: Membership, qualifying: Tier | None, at: datetime) -> tuple[Tier | None, datetime | None]:
    """Apply the downgrade policy: (tier to hold, hold_until)."""
    program: Program = membership.program
    current = membership.tier
    if _rank(qualifying) >= _rank(current):
        return qualifying, None
    policy = program.tier_downgrade
    if policy == TierDowngrade.NEVER:
        return current, None
    if policy == TierDowngrade.GRACE_DAYS:
        hold = membership.tier_hold_until or at + timedelta(days=program.tier_grace_days)
        return (current, hold) if at < hold else (qualifying, None)
    if program.tier_window == TierWindow.ROLLING_DAYS and membership.tier_since is not None:
        hold = membership.tier_since + timedelta(days=program.tier_window_days)
        return (current, hold) if at < hold else (qualifying, None)
    return qualifying, None


@transaction.atomic
def tier_recalculate(
    *, membership: Membership, at: datetime | None = None, cause: str = "", tiers: list[Tier] | None = None
) -> Membership:
    """Recompute one member's tier; sends `tier_changed` when it changes."""
    at = at or timezone.now()
    balance_lock(membership.pk)  # one member's writes are serialised on their Balance row
    membership = Membership.objects.select_related("program", "tier", "tier_floor", "customer").get(pk=membership.pk)
    tiers = tiers if tiers is not None else list(Tier.objects.filter(program=membership.program).order_by("rank"))
    qualifying, _ = tier_qualifying(membership, at, tiers)
    target, hold_until = _decide(membership, qualifying, at)
    if membership.tier_floor is not None and _rank(membership.tier_floor) > _rank(target):
        target, hold_until = membership.tier_floor, None
    return _tier_apply(membership, target, hold_until, at=at, cause=cause)


def tiers_recalculate_many(
    *, memberships: Sequence[Membership], program: Program, at: datetime, causes: dict[int, str]
) -> None:
    """
    `tier_recalculate` for many members of `program` whose Balance rows the caller holds locked (loyalty's earning
    batch): their figures in one query (`_metric_annotation`, the periodic recalculation's), the downgrade policy
    and the floor per member in memory, one update per hold value of the members whose tier stays, `_tier_apply`
    (with its `loyalty.tier_changed`) for each member whose tier changes. `memberships` come with program, tier,
    tier_floor and customer; `causes`: membership id -> cause. Call inside a transaction.
    """
    if not memberships:
        return
    tiers = list(Tier.objects.filter(program=program).order_by("rank"))
    end = at + timedelta(microseconds=1)
    start: datetime | None = None
    if program.tier_window == TierWindow.ROLLING_DAYS:
        start = at - timedelta(days=program.tier_window_days)
    elif program.tier_window == TierWindow.CALENDAR_YEAR:
        start = _year_start(at)
    rows = Membership.objects.filter(pk__in=[member.pk for member in memberships]).annotate(
        metric=_metric_annotation(program, start, end)
    )
    if program.tier_window == TierWindow.CALENDAR_YEAR and program.tier_downgrade == TierDowngrade.PERIOD_END:
        rows = rows.annotate(previous=_metric_annotation(program, _year_start(at, 1), _year_start(at)))
    figures = {row["pk"]: row for row in rows.values("pk", *_extra(rows))}
    stays: dict[datetime | None, list[int]] = {}
    for membership in memberships:
        figure = figures[membership.pk]
        qualifying = tier_for(tiers, Decimal(figure["metric"] or 0))
        if "previous" in figure:
            previous = tier_for(tiers, Decimal(figure["previous"] or 0))
            if _rank(previous) > _rank(qualifying):
                qualifying = previous
        target, hold_until = _decide(membership, qualifying, at)
        if membership.tier_floor is not None and _rank(membership.tier_floor) > _rank(target):
            target, hold_until = membership.tier_floor, None
        if _rank(membership.tier) != _rank(target):
            _tier_apply(membership, target, hold_until, at=at, cause=causes[membership.pk])
        else:
            stays.setdefault(hold_until, []).append(membership.pk)
            membership.tier_hold_until = hold_until
    for hold_until, ids in stays.items():
        Membership.objects.filter(pk__in=ids).update(tier_hold_until=hold_until)


def _tier_apply(
    membership: Membership, target: Tier | None, hold_until: datetime | None, *, at: datetime, cause: str
) -> Membership:
    old = membership.tier
    changed = _rank(old) != _rank(target)
    fields: dict[str, Any] = {"tier_hold_until": hold_until}
    if changed:
        fields.update(tier=target, tier_since=at)
    Membership.objects.filter(pk=membership.pk).update(**fields)
    for name, value in fields.items():
        setattr(membership, name, value)
    if changed:
        domain_event_emit(
            signal=signals.tier_changed,
            name="loyalty.tier_changed",
            customer=membership.customer,
            payload={
                "membership_id": membership.pk,
                "old_tier": old.name if old else None,
                "new_tier": target.name if target else None,
                "direction": "up" if _rank(target) > _rank(old) else "down",
            },
            cause=cause,
            sender=Membership,
            membership=membership,
            old_tier=old,
            new_tier=target,
        )
    return membership


@transaction.atomic
def tier_set(*, membership: Membership, tier: Tier | None, actor: Any = None, cause: str = "") -> Membership:
    """Assign a tier manually: it becomes the member's floor (kept whatever the figures say) and current tier."""
    balance_lock(membership.pk)
    membership = Membership.objects.select_related("program", "tier", "customer").get(pk=membership.pk)
    if tier is not None and tier.program_id != membership.program_id:
        raise DomainError("The tier belongs to another program.", path="tier", code="wrong_program")
    Membership.objects.filter(pk=membership.pk).update(tier_floor=tier)
    membership.tier_floor = tier
    if tier is None:
        return tier_recalculate(membership=membership, cause=cause)
    return _tier_apply(membership, tier, None, at=timezone.now(), cause=cause or "manual")


def _metric_annotation(program: Program, start: datetime | None, end: datetime) -> Subquery:
    """The tier figure of every member as one correlated subquery (so the scan is one SQL statement)."""
    if program.tier_basis == TierBasis.AMOUNT_SPENT:
        rows = Order.objects.filter(customer_id=OuterRef("customer_id"), placed_at__lt=end).exclude(
            status=OrderStatus.CANCELLED
        )
        if start is not None:
            rows = rows.filter(placed_at__gte=start)
        spent = (
            rows.values("customer_id").annotate(total=Sum(F("total_shop") - F("refunded_total_shop"))).values("total")
        )
        return Subquery(spent, output_field=DecimalField(max_digits=16, decimal_places=2))
    lots = PointLot.objects.filter(membership_id=OuterRef("pk"), created_at__lt=end)
    if start is not None:
        lots = lots.filter(created_at__gte=start)
    earned = lots.values("membership_id").annotate(total=Sum(F("amount") - F("reversed_amount"))).values("total")
    return Subquery(earned, output_field=DecimalField(max_digits=16, decimal_places=2))


def tiers_recalculate_all(*, at: datetime | None = None) -> int:
    """
    The periodic recalculation. One annotated scan per program computes every member's figure in SQL;
    only members whose qualifying tier differs from their current one, or who are inside a hold, are
    then recalculated (and locked) one by one. Returns how many tiers changed.
    """
    at = at or timezone.now()
    changed = 0
    for program in Program.objects.filter(is_active=True):
        tiers = list(Tier.objects.filter(program=program).order_by("rank"))
        if not tiers:
            continue
        end = at + timedelta(microseconds=1)
        start = None
        if program.tier_window == TierWindow.ROLLING_DAYS:
            start = at - timedelta(days=program.tier_window_days)
        elif program.tier_window == TierWindow.CALENDAR_YEAR:
            start = _year_start(at)
        members = Membership.objects.filter(program=program).annotate(metric=_metric_annotation(program, start, end))
        if program.tier_window == TierWindow.CALENDAR_YEAR and program.tier_downgrade == TierDowngrade.PERIOD_END:
            members = members.annotate(previous=_metric_annotation(program, _year_start(at, 1), _year_start(at)))
        ranks = {tier.pk: tier.rank for tier in tiers}
        for row in members.order_by("pk").values("pk", "tier_id", "tier_floor_id", "tier_hold_until", *_extra(members)):
            qualifying = tier_for(tiers, Decimal(row["metric"] or 0))
            if "previous" in row:
                previous = tier_for(tiers, Decimal(row["previous"] or 0))
                if _rank(previous) > _rank(qualifying):
                    qualifying = previous
            current_rank = ranks.get(row["tier_id"], -1)
            floor_rank = ranks.get(row["tier_floor_id"], -1)
            settled = (
                _rank(qualifying) == current_rank
                or (current_rank == floor_rank and _rank(qualifying) < floor_rank)
                or (program.tier_downgrade == TierDowngrade.NEVER and _rank(qualifying) < current_rank)
            )
            if settled and row["tier_hold_until"] is None:
                continue
            membership = tier_recalculate(
                membership=Membership(pk=row["pk"]), at=at, cause="tier_recalculation", tiers=tiers
            )
            changed += membership.tier_id != row["tier_id"]
    return changed


def _extra(members: QuerySet[Membership]) -> list[str]:
    return ["metric", "previous"] if "previous" in members.query.annotations else ["metric"]


# --- The ladder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LadderError:
    path: str
    message: str


def tier_ladder_errors(tiers: list[Tier]) -> list[LadderError]:
    """
    What is wrong with a program's ladder: ranks must be distinct and thresholds must rise with the
    ranks (a higher tier needs a strictly higher threshold, or the lower one could never be held).
    """
    errors = []
    ladder = sorted(tiers, key=lambda tier: (tier.rank, tier.threshold))
    for lower, higher in pairwise(ladder):
        if lower.rank == higher.rank:
            errors.append(LadderError("rank", f"Rank {higher.rank} is taken by both {lower.name} and {higher.name}."))
        elif higher.threshold <= lower.threshold:
            errors.append(
                LadderError(
                    "threshold",
                    f"{higher.name} (rank {higher.rank}) needs a threshold above {lower.name}'s {lower.threshold} "
                    f"(rank {lower.rank}): ranks and thresholds must rise together.",
                )
            )
    return errors


@dataclass(frozen=True)
class LadderMoves:
    """How many members a ladder change would move at the next recalculation (by their current figures)."""

    up: int
    down: int

    @property
    def total(self) -> int:
        return self.up + self.down


def _tier_key(tier: Tier | None) -> object:
    return None if tier is None else (tier.pk or f"new:{tier.name}")


def tier_ladder_moves(*, program: Program, tiers: list[Tier], at: datetime | None = None) -> LadderMoves:
    """
    Members whose qualifying tier differs between the stored ladder and `tiers` (the proposed one),
    from one annotated scan of the members' figures (points earned or shop-currency amount spent).
    """
    at = at or timezone.now()
    current = list(Tier.objects.filter(program=program).order_by("rank"))
    proposed = sorted(tiers, key=lambda tier: tier.rank)
    end = at + timedelta(microseconds=1)
    start = None
    if program.tier_window == TierWindow.ROLLING_DAYS:
        start = at - timedelta(days=program.tier_window_days)
    elif program.tier_window == TierWindow.CALENDAR_YEAR:
        start = _year_start(at)
    metrics = (
        Membership.objects.filter(program=program)
        .annotate(metric=_metric_annotation(program, start, end))
        .values_list("metric", flat=True)
    )
    up = down = 0
    for metric in metrics.iterator(chunk_size=5000):
        figure = Decimal(metric or 0)
        before, after = tier_for(current, figure), tier_for(proposed, figure)
        if _tier_key(before) == _tier_key(after):
            continue
        before_rank = -1 if before is None else _rank_in(before, proposed)
        if _rank(after) > before_rank:
            up += 1
        else:
            down += 1
    return LadderMoves(up=up, down=down)


def _rank_in(tier: Tier, ladder: list[Tier]) -> int:
    """A stored tier's rank in the proposed ladder (its edited rank when it is being changed)."""
    same = next((other for other in ladder if other.pk and other.pk == tier.pk), None)
    return (same or tier).rank


@transaction.atomic
def tier_save(*, tier: Tier) -> Tier:
    """
    Create or change one tier after checking the program's whole ladder (locked, so two edits cannot
    together break it). An inconsistent ladder is refused with a DomainError naming `rank` or `threshold`.
    """
    Program.objects.select_for_update().filter(pk=tier.program_id).first()
    others = list(Tier.objects.filter(program_id=tier.program_id).exclude(pk=tier.pk))
    errors = tier_ladder_errors([*others, tier])
    if errors:
        raise DomainError(errors[0].message, path=errors[0].path, code="tier_ladder")
    stored = Tier.objects.filter(pk=tier.pk).first() if tier.pk else None
    before = audit_snapshot(stored) if stored is not None else None
    tier.save()
    audit_record(action="updated" if before is not None else "created", obj=tier, before=before)
    return tier
