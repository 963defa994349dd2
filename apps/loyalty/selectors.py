"""Reads of the loyalty app, with the joins they need."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from .choices import LotStatus
from .models import Balance, LedgerEntry, Membership, PointLot, Redemption, Referral, Tier
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


def lots_expiring(*, membership: Membership, at: datetime | None = None, days: int | None = None) -> QuerySet[PointLot]:
    at = at or timezone.now()
    days = membership.program.expiry_notice_days if days is None else days
    return PointLot.objects.filter(
        membership=membership,
        status=LotStatus.ACTIVE,
        remaining__gt=0,
        expires_at__gt=at,
        expires_at__lte=at + timezone.timedelta(days=days),
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


def rewards_priced(*, membership: Membership, at: datetime | None = None) -> list:
    """Available rewards with `member_price` set: the member's tier price where there is one (3 queries)."""
    from django.db.models import Prefetch

    from .models import RewardTierPrice
    from .services.rewards import rewards_available

    prices = Prefetch("tier_prices", queryset=RewardTierPrice.objects.filter(tier_id=membership.tier_id))
    rewards = list(rewards_available(membership=membership, at=at).prefetch_related(prices, "tiers"))
    for reward in rewards:
        tier_prices = list(reward.tier_prices.all())
        reward.member_price = tier_prices[0].points_cost if tier_prices else reward.points_cost
    return rewards


def balance_of(membership: Membership) -> Balance:
    return Balance.objects.get(pk=membership.pk)
