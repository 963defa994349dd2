"""
Earning from orders and custom events, and taking points back on refunds and cancellations.

Amounts: base points are `points_per_unit` per shop-currency unit (the order's amounts converted at
the rate stored on the order), unless the program sets a rate for the order's own currency
(`Program.currency_earning_rates`, points per unit of that currency). `min_order_total` is in the shop
currency; per-amount rules count points per shop-currency unit.

While the global kill switch (`apps.platform.kill_switch`) is on, orders and custom events earn nothing.

Every lot is keyed by its source ("order:<id>:base", "order:<id>:rule:<id>", "event:<id>:rule:<id>"),
so replaying the same event is a no-op.
"""

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from apps.customers.choices import OrderStatus
from apps.customers.models import CustomerEvent, Order
from apps.platform.kill_switch import kill_switch_is_on
from apps.tagging.models import ProductTag
from loyalty_site.lib.conditions import ConditionInvalid, EvaluationContext, condition_evaluate
from loyalty_site.lib.money import to_shop

from ..choices import LotStatus, RuleKind, SourceType
from ..models import EarningRule, EarningRuleCounter, Membership, PointLot, Program
from .ledger import (
    MemberLedger,
    balance_lock,
    lot_create,
    lot_take_back,
    lots_lock,
    member_expire_due,
    member_join,
    membership_for,
    points_round,
    program_default,
)
from .limits import lot_limits_record, rule_limits_take

logger = logging.getLogger(__name__)


def order_earn_base(order: Order, program: Program) -> Decimal:
    """
    The amount points are earned on: the subtotal without lines of excluded product tags, after
    discounts (spread over the lines in proportion) and with shipping, per the program.
    """
    subtotal = order.subtotal
    eligible = subtotal
    if program.excluded_product_tags:
        names = [str(name).lower() for name in program.excluded_product_tags]
        excluded = set(
            ProductTag.objects.annotate(tag_name=Lower("tag__name"))
            .filter(product__order_lines__order=order, tag_name__in=names)
            .values_list("product_id", flat=True)
        )
        eligible -= sum((line.total for line in order.lines.all() if line.product_id in excluded), Decimal(0))
    base = eligible
    if program.earn_after_discounts and subtotal > 0:
        base -= order.discount_total * eligible / subtotal
    if program.earn_on_shipping:
        base += order.shipping_total
    return max(base, Decimal("0"))


def order_amount_shop(order: Order, amount: Decimal) -> Decimal:
    """An amount of the order's currency in the shop currency, at the rate stored on the order."""
    if order.currency == order.shop_currency or order.exchange_rate is None:
        return amount
    return to_shop(amount, rate=order.exchange_rate)


def order_amount_points(order: Order, program: Program, amount: Decimal) -> Decimal:
    """
    Base points (before the tier multiplier and rounding) for an amount of the order's currency:
    the program's own rate for that currency when it sets one (`currency_earning_rates`), else
    `points_per_unit` per shop-currency unit of the converted amount.
    """
    per_currency = program.earning_rate_for(order.currency)
    if per_currency is not None:
        return amount * per_currency
    return order_amount_shop(order, amount) * program.points_per_unit


def _live_rules(
    program: Program, kinds: Sequence[str], at: datetime, membership: Membership | None = None
) -> list[EarningRule]:
    """Active rules of these kinds inside their time box and, if they target tiers, open to the member's tier."""
    rules = EarningRule.objects.filter(program=program, kind__in=kinds, is_active=True).prefetch_related(
        "tiers", "limits"
    )
    live = []
    for rule in rules.order_by("pk"):
        tier_ids = {tier.pk for tier in rule.tiers.all()}
        if rule.is_live(at) and (not tier_ids or (membership is not None and membership.tier_id in tier_ids)):
            live.append(rule)
    return live


def _context(
    membership: Membership, at: datetime, *, order: Order | None = None, event: CustomerEvent | None = None
) -> EvaluationContext:
    """What rule conditions read; one context per order/event, so its cache serves every rule."""
    return EvaluationContext(
        customer=membership.customer,
        now=at,
        order=order,
        custom_event=event,
        extra={"loyalty_membership": membership},
    )


def rule_matches(rule: EarningRule, context: EvaluationContext) -> bool:
    """Whether the rule's conditions (shared condition language; empty = always) hold for this event."""
    if not rule.conditions:
        return True
    try:
        return condition_evaluate(rule.conditions, context, path="conditions").result
    except ConditionInvalid:
        # Saving refuses invalid conditions; one stored before that must not stop the order's base
        # earning: it does not match, loudly (fail closed: never hand out points on a broken rule).
        logger.exception("loyalty: rule %s has invalid conditions: %r", rule.pk, rule.conditions)
        return False


def order_points_plan(order: Order, membership: Membership, at: datetime) -> list[tuple[str, EarningRule | None, int]]:
    """What an order earns, before caps: [(source key, rule, points)]."""
    program = membership.program
    # Thresholds are in the shop currency; an order whose shop amounts are unknown (a legacy row
    # without a rate) earns nothing rather than being read as if it were in the shop currency.
    if order.total_shop is None or order.total_shop < program.min_order_total:
        return []
    base_amount = order_earn_base(order, program)
    tier_multiplier = membership.tier.multiplier if membership.tier else Decimal("1")
    base_points = points_round(order_amount_points(order, program, base_amount) * tier_multiplier, program.rounding)
    plan: list[tuple[str, EarningRule | None, int]] = [(f"order:{order.pk}:base", None, base_points)]
    context = _context(membership, at, order=order)
    kinds = [RuleKind.PER_AMOUNT, RuleKind.PRODUCT_TAG_MULTIPLIER, RuleKind.TIME_BONUS]
    for rule in _live_rules(program, kinds, at, membership):
        if not rule_matches(rule, context):
            continue
        if rule.kind == RuleKind.PER_AMOUNT:
            # "points per unit" of a rule is per shop-currency unit
            points = points_round(
                order_amount_shop(order, base_amount) * rule.points * tier_multiplier, program.rounding
            )
        elif rule.kind == RuleKind.PRODUCT_TAG_MULTIPLIER:
            tagged = set(
                ProductTag.objects.filter(
                    product__order_lines__order=order, tag__name__iexact=rule.product_tag
                ).values_list("product_id", flat=True)
            )
            tagged_amount = sum((line.total for line in order.lines.all() if line.product_id in tagged), Decimal(0))
            extra = order_amount_points(order, program, tagged_amount) * (rule.multiplier - 1) * tier_multiplier
            points = points_round(extra, program.rounding)
        else:  # time-boxed bonus: a multiplier on the base points while the rule is live
            points = points_round(Decimal(base_points) * (rule.multiplier - 1), program.rounding)
        plan.append((f"order:{order.pk}:rule:{rule.pk}", rule, points))
    return plan


@transaction.atomic
def order_points_earn(*, order: Order, at: datetime | None = None, cause: str = "") -> list[PointLot]:
    """Earn the points of an order (auto-enrolling the customer if the program says so). Replays are no-ops."""
    at = at or timezone.now()
    program = program_default()
    order = Order.objects.select_related("customer").get(pk=order.pk)
    if program is None or order.status == OrderStatus.CANCELLED or order.customer.is_blocked:
        return []  # a blocked customer earns nothing
    if kill_switch_is_on():
        # The global kill switch stops every incentive: the order earns nothing (no backlog is replayed later).
        logger.info("loyalty: order %s earns nothing: global kill switch on", order.pk)
        return []
    membership = membership_for(order.customer, program)
    if membership is None:
        if not program.auto_enroll:
            return []
        membership, _ = member_join(customer=order.customer, program=program, at=at, cause=cause)
    balance = balance_lock(membership.pk)
    membership = Membership.objects.select_related("program", "tier", "customer").get(pk=membership.pk)
    done = set(PointLot.objects.filter(order=order).values_list("source_key", flat=True))
    ledger = MemberLedger(balance=balance, at=at, cause=cause or f"order:{order.pk}")
    lots = []
    for source_key, rule, points in order_points_plan(order, membership, at):
        if source_key in done or points <= 0:
            continue
        counters: list[EarningRuleCounter] = []
        if rule is not None:
            points, counters = rule_limits_take(rule, membership, points, at)
            if points <= 0:
                continue
        reason = f"Order {order}" if rule is None else f"Order {order}: {rule.name}"
        lot = lot_create(
            ledger,
            membership=membership,
            amount=points,
            source_type=SourceType.ORDER if rule is None else SourceType.RULE,
            source_key=source_key,
            reason=reason,
            rule=rule,
            order=order,
        )
        lot_limits_record(lot, counters)
        lots.append(lot)
    Membership.objects.filter(pk=membership.pk).update(last_activity_at=at)
    ledger.flush()
    return lots


@transaction.atomic
def order_points_reverse(*, order: Order, at: datetime | None = None, cause: str = "") -> int:
    """
    Take back the points earned on the refunded (or, when cancelled, the whole) part of an order, per
    the return policy, from the order's own lots first. Cumulative and idempotent: each lot's target
    is `amount x refunded / total` (rounded down), minus what was already taken back. Returns points taken.
    """
    at = at or timezone.now()
    order = Order.objects.get(pk=order.pk)
    membership_ids = list(PointLot.objects.filter(order=order).values_list("membership_id", flat=True).distinct())
    if not membership_ids:
        return 0
    membership = Membership.objects.select_related("program").get(pk=membership_ids[0])
    balance = balance_lock(membership.pk)
    ledger = MemberLedger(balance=balance, at=at, cause=cause or f"order:{order.pk}")
    member_expire_due(ledger)
    lots = lots_lock(Q(order=order))
    cancelled = order.status == OrderStatus.CANCELLED
    taken = 0
    for lot in lots:
        if cancelled or order.total <= 0:
            target = lot.amount
        else:
            target = int(
                (Decimal(lot.amount) * order.refunded_total / order.total).to_integral_value(rounding="ROUND_DOWN")
            )
        reason = f"Order {order} cancelled" if cancelled else f"Refund on order {order}"
        taken += lot_take_back(
            ledger, lot, target - lot.reversed_amount, policy=membership.program.return_policy, reason=reason
        )
    ledger.flush()
    return taken


EDIT_MARK = ":edit:"


@transaction.atomic
def order_points_adjust(*, order: Order, at: datetime | None = None, cause: str = "") -> int:
    """
    Bring an edited order's points to what it earns now (`order.updated`, and refunds of an edited order): for
    each source of the order (base, each rule) the points it should hold — the plan of the edited order, less the
    refunded share (`points x refunded / total`, rounded down) — against what its lots hold (amount - taken back).
    More → a new lot (`<source>:edit:<n>`; rule points limits apply; nothing while the kill switch is on); less →
    taken back from that source's lots, newest first, per the return policy (the refund path). Cancelled: every
    point taken back. Idempotent: a second run finds nothing to move. Returns the points moved (signed).
    """
    at = at or timezone.now()
    order = Order.objects.select_related("customer").get(pk=order.pk)
    membership_ids = list(PointLot.objects.filter(order=order).values_list("membership_id", flat=True).distinct())
    if not membership_ids:
        return 0  # it never earned (no program, kill switch, blocked customer): an edit does not start it
    balance = balance_lock(membership_ids[0])
    membership = Membership.objects.select_related("program", "tier", "customer").get(pk=membership_ids[0])
    lots = lots_lock(Q(order=order))
    by_source: dict[str, list[PointLot]] = {}
    for lot in lots:
        by_source.setdefault(lot.source_key.split(EDIT_MARK)[0], []).append(lot)
    earned_at = min(lot.created_at for lot in lots)  # the rules live when the order earned
    plan = (
        {}
        if order.status == OrderStatus.CANCELLED
        else {key: (rule, points) for key, rule, points in order_points_plan(order, membership, earned_at)}
    )
    ledger = MemberLedger(balance=balance, at=at, cause=cause or f"order:{order.pk}")
    policy = membership.program.return_policy
    moved = 0
    for source in sorted(set(plan) | set(by_source)):
        rule, points = plan.get(source, (None, 0))
        if points and order.total > 0 and order.refunded_total:
            points -= int(
                (Decimal(points) * order.refunded_total / order.total).to_integral_value(rounding="ROUND_DOWN")
            )
        held = sum(lot.amount - lot.reversed_amount for lot in by_source.get(source, []))
        if points > held and not kill_switch_is_on():
            extra, counters = points - held, list[EarningRuleCounter]()
            if rule is not None:
                extra, counters = rule_limits_take(rule, membership, extra, at)
            if extra > 0:
                count = sum(1 for lot in by_source.get(source, []) if EDIT_MARK in lot.source_key)
                lot = lot_create(
                    ledger,
                    membership=membership,
                    amount=extra,
                    source_type=SourceType.ORDER if rule is None else SourceType.RULE,
                    source_key=f"{source}{EDIT_MARK}{count + 1}",
                    reason=f"Order {order} edited",
                    rule=rule,
                    order=order,
                )
                lot_limits_record(lot, counters)
                moved += extra
        elif points < held:
            excess = held - points
            for lot in sorted(by_source[source], key=lambda row: -row.pk):
                take = min(excess, lot.amount - lot.reversed_amount)
                if take <= 0:
                    continue
                reason = (
                    f"Order {order} cancelled" if order.status == OrderStatus.CANCELLED else f"Order {order} edited"
                )
                lot_take_back(ledger, lot, take, policy=policy, reason=reason)
                excess -= take
                moved -= take
                if not excess:
                    break
    ledger.flush()
    return moved


@transaction.atomic
def event_points_earn(*, custom_event: CustomerEvent, at: datetime | None = None, cause: str = "") -> list[PointLot]:
    """Fixed points for a named custom event (newsletter signup, review...), per matching rule, within its limits."""
    at = at or timezone.now()
    program = program_default()
    if program is None:
        return []
    if kill_switch_is_on():
        logger.info("loyalty: custom event %s earns nothing: global kill switch on", custom_event.pk)
        return []
    candidates = EarningRule.objects.filter(
        program=program, kind=RuleKind.FIXED_EVENT, event_name=custom_event.name, is_active=True
    )
    if not candidates.exists() or custom_event.customer.is_blocked:
        return []  # a blocked customer earns nothing
    membership = membership_for(custom_event.customer, program)
    if membership is None:
        if not program.auto_enroll:
            return []
        membership, _ = member_join(customer=custom_event.customer, program=program, at=at, cause=cause)
    balance = balance_lock(membership.pk)
    membership = Membership.objects.select_related("program", "tier", "customer").get(pk=membership.pk)
    live = _live_rules(program, [RuleKind.FIXED_EVENT], at, membership)
    rules = [rule for rule in live if rule.event_name == custom_event.name]
    done = set(
        PointLot.objects.filter(source_key__startswith=f"event:{custom_event.pk}:").values_list("source_key", flat=True)
    )
    context = _context(membership, at, event=custom_event)
    ledger = MemberLedger(balance=balance, at=at, cause=cause or f"event:{custom_event.pk}")
    lots = []
    for rule in rules:
        source_key = f"event:{custom_event.pk}:rule:{rule.pk}"
        if source_key in done or not rule_matches(rule, context):
            continue
        points, counters = rule_limits_take(rule, membership, points_round(rule.points, program.rounding), at)
        if points <= 0:
            continue
        lot = lot_create(
            ledger,
            membership=membership,
            amount=points,
            source_type=SourceType.EVENT,
            source_key=source_key,
            reason=f"{custom_event.name}: {rule.name}",
            rule=rule,
        )
        lot_limits_record(lot, counters)
        lots.append(lot)
    Membership.objects.filter(pk=membership.pk).update(last_activity_at=at)
    ledger.flush()
    return lots


class PendingLot(TypedDict):
    remaining: int
    activates_at: datetime


def lots_pending_summary(membership: Membership) -> list[PendingLot]:
    return list(
        PointLot.objects.filter(membership=membership, status=LotStatus.PENDING, remaining__gt=0)
        .order_by("activates_at")
        .values("remaining", "activates_at")
    )
