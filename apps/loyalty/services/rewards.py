"""Rewards: validate → redeem (a single-use code, points spent FEFO, stock taken) → use / roll back."""

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from apps.platform.kill_switch import kill_switch_check
from loyalty_site.lib.errors import ConflictError, DomainError

from ..choices import FulfilmentStatus, RedemptionStatus
from ..models import LedgerEntry, Membership, Redemption, Reward, RewardTierPrice, code_generate
from .ledger import MemberLedger, balance_lock, customer_blocked_refuse, spend, spend_reverse

LIVE_REDEMPTIONS = [RedemptionStatus.ISSUED, RedemptionStatus.USED]


def rewards_available(*, membership: Membership, at: datetime | None = None) -> QuerySet[Reward]:
    """Rewards the member may see: active, valid now, in stock, and open to their tier."""
    at = at or timezone.now()
    rewards = Reward.objects.filter(program_id=membership.program_id, is_active=True).filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=at),
        Q(valid_until__isnull=True) | Q(valid_until__gt=at),
        Q(stock__isnull=True) | Q(stock__gt=0),
    )
    tier_filter = Q(tiers__isnull=True)
    if membership.tier_id:
        tier_filter |= Q(tiers=membership.tier_id)
    return rewards.filter(tier_filter).distinct().order_by("points_cost", "pk")


def reward_price(*, membership: Membership, reward: Reward) -> int:
    """The points the member pays: the tier's price when the reward has one, else the list price."""
    if membership.tier_id:
        price = RewardTierPrice.objects.filter(reward=reward, tier_id=membership.tier_id).values_list(
            "points_cost", flat=True
        )
        for points_cost in price:
            return points_cost
    return reward.points_cost


def reward_check(*, membership: Membership, reward: Reward, at: datetime, active_points: int | None = None) -> None:
    """Raise a DomainError naming why `membership` cannot redeem `reward` now (first: the global kill switch)."""
    kill_switch_check(path="reward")
    customer_blocked_refuse(membership.customer_id, doing="redeem rewards")
    if reward.program_id != membership.program_id or not reward.is_active:
        raise DomainError("This reward is not available.", path="reward", code="reward_unavailable")
    if reward.valid_from and at < reward.valid_from:
        raise DomainError("This reward is not available yet.", path="reward", code="reward_not_started")
    if reward.valid_until and at >= reward.valid_until:
        raise DomainError("This reward has ended.", path="reward", code="reward_ended")
    if reward.stock is not None and reward.stock <= 0:
        raise ConflictError("This reward is out of stock.", path="reward", code="out_of_stock")
    tier_ids = [tier.pk for tier in reward.tiers.all()]
    if tier_ids and membership.tier_id not in tier_ids:
        raise DomainError("This reward is not open to your tier.", path="reward", code="tier_not_eligible")
    if reward.per_customer_limit is not None:
        used = Redemption.objects.filter(membership=membership, reward=reward, status__in=LIVE_REDEMPTIONS).count()
        if used >= reward.per_customer_limit:
            raise DomainError("You have reached the limit for this reward.", path="reward", code="limit_reached")
    cost = reward_price(membership=membership, reward=reward)
    if active_points is not None and active_points < cost:
        raise DomainError(
            f"Not enough points: {active_points} available, {cost} needed.",
            path="points",
            code="insufficient_points",
        )


def reward_validate(*, membership: Membership, reward: Reward, at: datetime | None = None) -> None:
    """The read-only check the API's validate endpoint runs (no lock: redeem checks again under locks)."""
    at = at or timezone.now()
    balance = membership.balance
    balance.refresh_from_db()
    reward_check(membership=membership, reward=reward, at=at, active_points=balance.active)


@transaction.atomic
def reward_redeem(
    *,
    membership: Membership,
    reward: Reward,
    key: str | None = None,
    actor: Any = None,
    cause: str = "",
    at: datetime | None = None,
) -> Redemption:
    """
    Spend the reward's points (FEFO) and issue a single-use code. Locks: the member's Balance, their lots,
    then the reward row last (a conditional stock decrement), so the hot reward row is held briefly.
    """
    at = at or timezone.now()
    balance = balance_lock(membership.pk)
    if key and (existing := Redemption.objects.filter(idempotency_key=key, membership=membership).first()):
        return existing  # the same request replayed: no second spend
    membership = Membership.objects.select_related("program", "tier").get(pk=membership.pk)
    reward = Reward.objects.get(pk=reward.pk)
    reward_check(membership=membership, reward=reward, at=at)
    cost = reward_price(membership=membership, reward=reward)
    redemption = Redemption(
        reward=reward,
        membership=membership,
        points_spent=cost,
        fulfilment_status=FulfilmentStatus.PENDING if reward.needs_fulfilment else FulfilmentStatus.NOT_APPLICABLE,
        issued_at=at,
        expires_at=at + timedelta(days=reward.code_valid_days) if reward.code_valid_days else None,
        cause=cause[:64],
        idempotency_key=key or None,
    )
    for _attempt in range(5):
        redemption.code = code_generate()
        try:
            with transaction.atomic():
                redemption.save()
            break
        except IntegrityError:
            if key and Redemption.objects.filter(idempotency_key=key).exists():
                raise ConflictError("This idempotency key was used for another member.", path="key") from None
    else:
        raise ConflictError("Could not issue a unique code; try again.", path="code", code="code_collision")
    ledger = MemberLedger(balance=balance, at=at, actor=actor, cause=cause)
    spend(ledger, points=cost, reason=f"Redeemed {reward.name}", redemption=redemption)
    if reward.stock is not None:
        taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
        if not taken:
            raise ConflictError("This reward is out of stock.", path="reward", code="out_of_stock")
    Membership.objects.filter(pk=membership.pk).update(last_activity_at=at)
    ledger.flush()
    return redemption


def redemption_find(code: str) -> Redemption:
    payload = code.strip()
    if payload.upper().startswith("LOYALTY:"):
        payload = payload[len("LOYALTY:") :]
    redemption = (
        Redemption.objects.select_related("reward", "membership__customer").filter(code=payload.upper()).first()
    )
    if redemption is None:
        raise DomainError("Unknown code.", path="code", code="unknown_code")
    return redemption


@transaction.atomic
def redemption_use(*, code: str, actor: Any = None, channel: str = "online", at: datetime | None = None) -> Redemption:
    """Mark a code used (online checkout or staff confirming a scanned QR code). A code works once."""
    at = at or timezone.now()
    found = redemption_find(code)
    redemption = (
        Redemption.objects.select_for_update().select_related("reward", "membership__customer").get(pk=found.pk)
    )
    if redemption.membership.customer.is_blocked:
        raise DomainError("This customer is blocked and cannot redeem.", path="code", code="customer_blocked")
    if redemption.status == RedemptionStatus.USED:
        raise ConflictError("This code has already been used.", path="code", code="code_used")
    if redemption.status != RedemptionStatus.ISSUED:
        raise ConflictError(
            f"This code is {redemption.get_status_display().lower()}.", path="code", code="code_invalid"
        )
    if redemption.expires_at and redemption.expires_at <= at:
        raise ConflictError("This code has expired.", path="code", code="code_expired")
    redemption.status = RedemptionStatus.USED
    redemption.used_at = at
    redemption.used_by = actor if getattr(actor, "is_authenticated", False) else None
    redemption.used_channel = channel[:16]
    redemption.save(update_fields=["status", "used_at", "used_by", "used_channel"])
    return redemption


@transaction.atomic
def redemption_rollback(
    *,
    redemption: Redemption,
    reason: str = "Rolled back",
    actor: Any = None,
    cause: str = "",
    at: datetime | None = None,
) -> Redemption:
    """Undo a redemption: points go back to the lots they came from, the stock is returned."""
    at = at or timezone.now()
    balance = balance_lock(redemption.membership_id)
    redemption = Redemption.objects.select_for_update().select_related("reward").get(pk=redemption.pk)
    if redemption.status == RedemptionStatus.ROLLED_BACK:
        return redemption
    if redemption.status not in LIVE_REDEMPTIONS:
        raise ConflictError(f"A {redemption.status} code cannot be rolled back.", path="code", code="code_invalid")
    ledger = MemberLedger(balance=balance, at=at, actor=actor, cause=cause)
    for entry in LedgerEntry.objects.filter(redemption=redemption, kind="spend").order_by("pk"):
        spend_reverse(ledger, entry, reason=reason, redemption=redemption)
    if redemption.reward.stock is not None:
        Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)
    redemption.status = RedemptionStatus.ROLLED_BACK
    redemption.rolled_back_at = at
    redemption.save(update_fields=["status", "rolled_back_at"])
    ledger.flush()
    return redemption


@transaction.atomic
def redemption_fulfilment_set(*, redemption: Redemption, status: str) -> Redemption:
    Redemption.objects.filter(pk=redemption.pk).update(fulfilment_status=FulfilmentStatus(status))
    redemption.fulfilment_status = status
    return redemption
