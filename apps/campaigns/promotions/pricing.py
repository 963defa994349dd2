"""
The discount computation, pure and deterministic: integers in the shop currency's minor units.

Every amount enters as minor units (cents); a percentage is rounded once per incentive, half to even
(`loyalty_site.lib.money.ROUNDING`); an order-level amount is spread over lines by the largest remainder
(ties to the lower line index), so the per-line discounts always add up to the order discount and no line
is ever discounted below zero. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from loyalty_site.lib.money import ROUNDING

from .choices import EffectKind


@dataclass
class LineState:
    """One cart line: its initial amount and what is left after the incentives applied so far."""

    index: int
    quantity: int
    unit: int  # unit price, minor units
    initial: int
    remaining: int


@dataclass
class Effect:
    """What one incentive gives: a discount per line index, on shipping, or a points multiplier."""

    lines: dict[int, int] = field(default_factory=dict)
    shipping: int = 0
    multiplier: Decimal | None = None
    points: int = 0  # bonus loyalty points (not money: never in `total`)

    @property
    def total(self) -> int:
        return sum(self.lines.values()) + self.shipping


def percent_of(amount: int, percent: Decimal) -> int:
    """`percent` % of `amount` minor units, rounded half to even to a whole minor unit."""
    return int((Decimal(amount) * percent / Decimal(100)).quantize(Decimal(1), rounding=ROUNDING))


def allocate(total: int, weights: Iterable[tuple[int, int]]) -> dict[int, int]:
    """
    Spread `total` over (index, weight) proportionally by the largest remainder; ties go to the lower
    index. Never gives an index more than its weight when total <= sum of weights.
    """
    weights = [(index, weight) for index, weight in weights if weight > 0]
    whole = sum([weight for _, weight in weights])
    if total <= 0 or whole <= 0:
        return {}
    total = min(total, whole)
    shares: dict[int, int] = {}
    by_remainder: list[tuple[int, int]] = []  # (-remainder, index): largest remainder first, ties to the lower index
    for index, weight in weights:
        share, remainder = divmod(total * weight, whole)
        shares[index] = share
        by_remainder.append((-remainder, index))
    left = total - sum(shares.values())
    if left:
        by_remainder.sort()
        for _, index in by_remainder[:left]:
            shares[index] += 1
    return {index: share for index, share in shares.items() if share}


def effect_cap(effect: Effect, cap: int | None) -> Effect:
    """The effect shrunk to `cap` minor units in total, spread in proportion to what it gave each line."""
    if cap is None or effect.total <= cap:
        return effect
    weights = [(index, amount) for index, amount in effect.lines.items()]
    if effect.shipping:
        weights.append((-1, effect.shipping))
    spread = allocate(cap, weights)
    shipping = spread.pop(-1, 0)
    return Effect(lines=spread, shipping=shipping, multiplier=effect.multiplier, points=effect.points)


@dataclass(frozen=True)
class IncentiveTerms:
    """The numbers of one incentive, in minor units (from the Incentive row)."""

    kind: str
    percent: Decimal | None = None
    amount: int | None = None
    max_discount: int | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None
    multiplier: Decimal | None = None
    points: int | None = None


def effect_compute(
    terms: IncentiveTerms,
    *,
    lines: list[LineState],
    matching: set[int],
    shipping_remaining: int,
    percent_on_initial: bool,
) -> Effect:
    """The effect of one incentive on the cart as it stands (`lines[i].remaining` already discounted)."""
    chosen = [line for line in lines if line.index in matching and line.remaining > 0]
    kind = terms.kind
    effect = Effect()
    if kind in (EffectKind.PERCENT_ORDER, EffectKind.PERCENT_LINES):
        percent = terms.percent or Decimal(0)
        base = sum(line.initial if percent_on_initial else line.remaining for line in chosen)
        total = min(percent_of(base, percent), sum(line.remaining for line in chosen))
        effect.lines = allocate(total, [(line.index, line.remaining) for line in chosen])
    elif kind == EffectKind.FIXED_ORDER:
        effect.lines = allocate(terms.amount or 0, [(line.index, line.remaining) for line in chosen])
    elif kind == EffectKind.FIXED_PER_UNIT:
        per_unit = terms.amount or 0
        effect.lines = {
            line.index: min(per_unit * line.quantity, line.remaining) for line in chosen if per_unit * line.quantity
        }
    elif kind == EffectKind.FIXED_PRICE_ITEM:
        price = terms.amount or 0
        effect.lines = {
            line.index: line.remaining - price * line.quantity
            for line in chosen
            if line.remaining > price * line.quantity
        }
    elif kind == EffectKind.BUY_X_GET_Y:
        buy, get = terms.buy_quantity or 0, terms.get_quantity or 0
        percent = terms.percent if terms.percent is not None else Decimal(100)
        units = sorted(
            ((line.unit, line.index) for line in chosen for _ in range(line.quantity)),
            key=lambda unit: (unit[0], -unit[1]),
        )
        free = (len(units) // (buy + get)) * get if buy + get else 0
        per_line: dict[int, int] = {}
        for unit, index in units[:free]:  # the cheapest units are the free ones
            per_line[index] = per_line.get(index, 0) + unit
        remaining = {line.index: line.remaining for line in chosen}
        for index, amount in per_line.items():
            discount = min(percent_of(amount, percent), remaining[index])
            if discount:
                effect.lines[index] = discount
    elif kind == EffectKind.FREE_SHIPPING:
        effect.shipping = shipping_remaining
    elif kind == EffectKind.POINTS_MULTIPLIER:
        effect.multiplier = terms.multiplier
    elif kind == EffectKind.BONUS_POINTS:
        effect.points = terms.points or 0
    elif kind == EffectKind.GIFT_CARD_CREDIT:
        # The card's balance (`amount`) pays what is left of the lines and the shipping, spread by the largest
        # remainder over them (shipping as index -1): never more than the balance or than what is left to pay.
        weights = [(line.index, line.remaining) for line in lines if line.remaining > 0]
        if shipping_remaining > 0:
            weights.append((-1, shipping_remaining))
        spread = allocate(terms.amount or 0, weights)
        effect.shipping = spread.pop(-1, 0)
        effect.lines = spread
    return effect_cap(effect, terms.max_discount)


def effect_apply(effect: Effect, *, lines: list[LineState]) -> None:
    """Take the effect's line discounts off the lines' remaining amounts."""
    for line in lines:
        line.remaining -= effect.lines.get(line.index, 0)
