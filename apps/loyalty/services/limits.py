"""
Points limits of earning rules, on the platform's limit counters (`apps.platform.limits`, which owns taking,
locking and giving back; this module only says which counters a rule's earning moves).

- `rule_limits_take`: an earning of a rule is reduced to what its limits leave and taken from their counters
  (locked after the member's Balance, ascending primary key), in the earning's transaction.
- `lot_limits_record`: the lot that earning created remembers what it took from each counter (EarningRuleTake).
- `lot_limits_give_back`: when points of a lot are taken back (refund, cancellation, edited order, rejected hold),
  the same number goes back to each counter the lot took from, in the reversal's transaction: a refund frees room
  under the limit for later earnings. The older per-rule caps (`cap_per_day/week/month`, `cap_total`) became limits
  of this kind (migration loyalty 0011); there is no other capping path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db.models import F

from apps.platform.limits import CounterKey, counter_give_back, counters_take_up_to, period_bucket

from ..choices import RuleLimitScope
from ..models import EarningRule, EarningRuleCounter, EarningRuleTake, Membership, PointLot


def rule_limits_take(
    rule: EarningRule, membership: Membership, points: int, at: datetime
) -> tuple[int, list[EarningRuleCounter]]:
    """
    `points` reduced to what every points limit of the rule leaves, taken from their counters; returns the points
    and the counters taken from (for `lot_limits_record`). Exact under concurrency: never a point over a limit.
    """
    limits = list(rule.limits.all())
    if not limits or points <= 0:
        return max(points, 0), []
    keys: dict[CounterKey, Decimal] = {}
    for limit in limits:
        subject = "" if limit.scope == RuleLimitScope.RULE else f"customer:{membership.customer_id}"
        keys[(limit.pk, period_bucket(limit.period, at), subject)] = Decimal(limit.points)
    taken, counters = counters_take_up_to(EarningRuleCounter, keys, Decimal(points))
    return int(taken), counters


def lot_limits_record(lot: PointLot, counters: Iterable[EarningRuleCounter]) -> None:
    """Remember what `lot` took from each counter (its whole amount from each)."""
    EarningRuleTake.objects.bulk_create(
        [EarningRuleTake(lot=lot, counter=counter, amount=lot.amount) for counter in counters]
    )


def lot_limits_give_back(lot: PointLot, points: int) -> int:
    """
    `points` of `lot` were taken back: give as many back to each counter the lot took from (never more than it
    took). Only rule lots take from limits, so other lots cost no query. Returns the points given back per counter.
    """
    if points <= 0 or lot.rule_id is None:
        return 0
    given = 0
    for take in EarningRuleTake.objects.filter(lot=lot).order_by("counter_id"):
        back = min(points, take.amount - take.returned)
        if back > 0:
            counter_give_back(EarningRuleCounter, take.counter_id, Decimal(back))
            EarningRuleTake.objects.filter(pk=take.pk).update(returned=F("returned") + back)
            given = max(given, back)
    return given
