"""Reads of the loyalty app, with the joins they need."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .choices import LotStatus
from .models import Balance, LedgerEntry, Membership, PointLot, Redemption, Referral, Reward, Tier
from .services.ledger import program_default
from .services.tiers import tier_qualifying


def membership_get(*, customer_id: int) -> Membership | None:
    program = program_default()
    if program is None:
        return None
    return (
        Membership.objects.select_related("program", "tier", "tier_floor", "customer", "balance")
        .filter(program=program, customer_id=customer_id)
        .first()
    )


def ledger_entries(*, membership: Membership) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(membership=membership).select_related("lot", "actor", "redemption__reward")


def lots_pending(*, membership: Membership) -> QuerySet[PointLot]:
    return PointLot.objects.filter(membership=membership, status=LotStatus.PENDING, remaining__gt=0).order_by(
        "activates_at", "pk"
    )


def pending_by_day(*, membership: Membership, days: int = 5) -> list[dict[str, Any]]:
    """
    Pending points summed per activation day (in the shop's time zone), soonest first: the first row is the
    next activation. One grouped query over the member's pending lots.
    """
    from django.db.models import Sum
    from django.db.models.functions import TruncDate

    rows = (
        lots_pending(membership=membership)
        .order_by()
        .annotate(day=TruncDate("activates_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(points=Sum("remaining"))
        .order_by("day")[:days]
    )
    return [{"day": row["day"], "points": row["points"]} for row in rows]


def redemptions_history(*, membership: Membership, limit: int = 20) -> list[Redemption]:
    """The member's codes that can no longer be used (used, expired, rolled back), latest first."""
    from django.db.models import F

    from .choices import RedemptionStatus

    return list(
        redemptions_of(membership=membership)
        .exclude(status=RedemptionStatus.ISSUED)
        .order_by(F("used_at").desc(nulls_last=True), "-issued_at", "-pk")[:limit]
    )


def lots_expiring(*, membership: Membership, at: datetime | None = None, days: int | None = None) -> QuerySet[PointLot]:
    at = at or timezone.now()
    days = membership.program.expiry_notice_days if days is None else days
    return PointLot.objects.filter(
        membership=membership,
        status=LotStatus.ACTIVE,
        remaining__gt=0,
        expires_at__gt=at,
        expires_at__lte=at + timedelta(days=days),
    ).order_by("expires_at", "pk")


def redemptions_of(*, membership: Membership) -> QuerySet[Redemption]:
    return Redemption.objects.filter(membership=membership).select_related("reward")


def referrals_of(*, membership: Membership) -> QuerySet[Referral]:
    return Referral.objects.filter(referrer=membership).select_related("referee")


@dataclass(frozen=True)
class TierProgress:
    tier: Tier | None
    next_tier: Tier | None
    metric: Decimal
    remaining: Decimal
    percent: int

    @property
    def remaining_money(self) -> str:
        """`remaining` as an amount of the shop currency (tiers by amount spent)."""
        from loyalty_site.lib.money import money_format, shop_currency

        return money_format(self.remaining, shop_currency())


def tier_progress(*, membership: Membership, at: datetime | None = None) -> TierProgress:
    """Where the member stands: current tier, the next one, and how far to it (in the program's basis)."""
    at = at or timezone.now()
    tiers = list(Tier.objects.filter(program=membership.program).order_by("rank"))
    _, metric = tier_qualifying(membership, at, tiers)
    current_rank = membership.tier.rank if membership.tier else -1
    next_tier = next((tier for tier in tiers if tier.rank > current_rank), None)
    if next_tier is None:
        return TierProgress(membership.tier, None, metric, Decimal(0), 100)
    remaining = max(next_tier.threshold - metric, Decimal(0))
    percent = 100 if next_tier.threshold <= 0 else int(min(metric / next_tier.threshold, Decimal(1)) * 100)
    return TierProgress(membership.tier, next_tier, metric, remaining, percent)


def rewards_priced(*, membership: Membership, at: datetime | None = None) -> list[Reward]:
    """Available rewards with `member_price` set: the member's tier price where there is one (3 queries)."""
    from django.db.models import Prefetch

    from .models import RewardTierPrice
    from .services.rewards import rewards_available

    prices = Prefetch("tier_prices", queryset=RewardTierPrice.objects.filter(tier=membership.tier_id))
    rewards = list(rewards_available(membership=membership, at=at).prefetch_related(prices, "tiers"))
    for reward in rewards:
        tier_prices = list(reward.tier_prices.all())
        reward.member_price = tier_prices[0].points_cost if tier_prices else reward.points_cost
    return rewards


def balance_of(membership: Membership) -> Balance:
    return Balance.objects.get(pk=membership.pk)


def ledger_drift(*, membership_ids: list[int] | None = None) -> list[dict]:
    """
    Members whose Balance row disagrees with their ledger (sum of entries) or their lots (sum of
    remaining): an audit that should always return []. Two grouped queries, whatever the member count.
    """
    from django.db.models import Q, Sum

    entries = LedgerEntry.objects.values("membership_id").annotate(
        active=Sum("active_delta"), pending=Sum("pending_delta"), debt=Sum("debt_delta")
    )
    lots = PointLot.objects.values("membership_id").annotate(
        active=Sum("remaining", filter=Q(status__in=[LotStatus.ACTIVE, LotStatus.SPENT])),
        pending=Sum("remaining", filter=Q(status=LotStatus.PENDING)),
    )
    balances = Balance.objects.all()
    if membership_ids is not None:
        entries = entries.filter(membership_id__in=membership_ids)
        lots = lots.filter(membership_id__in=membership_ids)
        balances = balances.filter(pk__in=membership_ids)
    by_entries = {row["membership_id"]: row for row in entries}
    by_lots = {row["membership_id"]: row for row in lots}
    drift = []
    for balance in balances.order_by("pk"):
        ledger: Mapping[str, Any] = by_entries.get(balance.pk, {})
        lot: Mapping[str, Any] = by_lots.get(balance.pk, {})
        expected = {
            "active": ledger.get("active") or 0,
            "pending": ledger.get("pending") or 0,
            "debt": ledger.get("debt") or 0,
            "lots_active": lot.get("active") or 0,
            "lots_pending": lot.get("pending") or 0,
        }
        actual = {
            "active": balance.active,
            "pending": balance.pending,
            "debt": balance.debt,
            "lots_active": balance.active,
            "lots_pending": balance.pending,
        }
        if expected != actual:
            drift.append({"membership_id": balance.pk, "balance": actual, "ledger": expected})
    return drift
