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
from ..models import EarningRule, EarningRuleCounter, Membership, PointLot, Program, Tier
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


def rules_active(program: Program, kinds: Sequence[str]) -> list[EarningRule]:
    """The program's active rules of these kinds, with their tiers and limits, in pk order (3 queries)."""
    return list(
        EarningRule.objects.filter(program=program, kind__in=kinds, is_active=True)
        .prefetch_related("tiers", "limits")
        .order_by("pk")
    )


def _live_rules(
    program: Program,
    kinds: Sequence[str],
    at: datetime,
    membership: Membership | None = None,
    rules: Sequence[EarningRule] | None = None,
) -> list[EarningRule]:
    """
    Active rules of these kinds inside their time box and, if they target tiers, open to the member's tier;
    from `rules` (`rules_active`, read once for a batch) when given.
    """
    candidates = rules_active(program, kinds) if rules is None else [rule for rule in rules if rule.kind in kinds]
    live = []
    for rule in candidates:
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


def _base_points(order: Order, program: Program, tier: Tier | None) -> tuple[Decimal, Decimal, int] | None:
    """(the amount earned on, the tier multiplier, the base points) of an order; None when it earns nothing."""
    # Thresholds are in the shop currency; an order whose shop amounts are unknown (a legacy row
    # without a rate) earns nothing rather than being read as if it were in the shop currency.
    if order.total_shop is None or order.total_shop < program.min_order_total:
        return None
    base_amount = order_earn_base(order, program)
    tier_multiplier = tier.multiplier if tier else Decimal("1")
    base_points = points_round(order_amount_points(order, program, base_amount) * tier_multiplier, program.rounding)
    return base_amount, tier_multiplier, base_points


ORDER_RULE_KINDS = (RuleKind.PER_AMOUNT, RuleKind.PRODUCT_TAG_MULTIPLIER, RuleKind.TIME_BONUS)


def order_points_plan(
    order: Order, membership: Membership, at: datetime, rules: Sequence[EarningRule] | None = None
) -> list[tuple[str, EarningRule | None, int]]:
    """What an order earns, before caps: [(source key, rule, points)]; `rules`: `rules_active` read once."""
    program = membership.program
    base = _base_points(order, program, membership.tier)
    if base is None:
        return []
    base_amount, tier_multiplier, base_points = base
    plan: list[tuple[str, EarningRule | None, int]] = [(f"order:{order.pk}:base", None, base_points)]
    context = _context(membership, at, order=order)
    for rule in _live_rules(program, ORDER_RULE_KINDS, at, membership, rules):
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


def order_base_points(order: Order) -> int:
    """
    The base points of an order (the program's rate x the tier multiplier, before earning rules): what a
    promotion's points multiplier multiplies. The order's own base lot when it has earned already, else what its
    plan gives now (the same computation `order_points_earn` will make); 0 when the order earns nothing (no program,
    cancelled, blocked customer, not a member of a program that does not enrol, under the minimum total).
    """
    lot = PointLot.objects.filter(source_key=f"order:{order.pk}:base").values_list("amount", flat=True).first()
    if lot is not None:
        return lot
    program = program_default()
    order = Order.objects.select_related("customer").get(pk=order.pk)
    if program is None or order.status == OrderStatus.CANCELLED or order.customer.is_blocked:
        return 0
    membership = membership_for(order.customer, program)
    if membership is None and not program.auto_enroll:
        return 0
    base = _base_points(order, program, membership.tier if membership is not None else None)
    return 0 if base is None else base[2]


def order_multiplier_points(order: Order, multiplier: Decimal) -> int:
    """The extra points a points multiplier gives an order: its base points x (multiplier - 1), program rounding."""
    program = program_default()
    base = order_base_points(order)
    if program is None or base <= 0 or multiplier <= 1:
        return 0
    return points_round(Decimal(base) * (multiplier - 1), program.rounding)


def order_boost_key(order_id: int, ref: str) -> str:
    """The lot of a promotion's extra points on an order: `order:<id>:promotion:<ref>` (held with the order's)."""
    return f"order:{order_id}:promotion:{ref}"[:128]


@transaction.atomic
def order_points_boost(
    *, order: Order, points: int, ref: str, reason: str, at: datetime | None = None, cause: str = ""
) -> tuple[PointLot | None, bool]:
    """
    Extra points a promotion gives on an order (a campaign's points multiplier): one lot `order_boost_key(order, ref)`
    tied to the order, earned like the order's own points (pending days, expiry, holds by the `order:<id>:` prefix),
    so a refund or a cancellation of the order takes it back in proportion like the rest of the order's earning.
    Nothing while the global kill switch is on, for a cancelled order or a blocked customer; the customer is
    enrolled if the program auto-enrols. A second call with the same ref returns (the lot, False): once per order.
    Returns (None, False) when nothing was earned.
    """
    at = at or timezone.now()
    source_key = order_boost_key(order.pk, ref)
    existing = PointLot.objects.filter(source_key=source_key).first()
    if existing is not None:
        return existing, False
    program = program_default()
    order = Order.objects.select_related("customer").get(pk=order.pk)
    if points <= 0 or program is None or order.status == OrderStatus.CANCELLED or order.customer.is_blocked:
        return None, False
    if kill_switch_is_on():
        logger.info("loyalty: order %s gets no promotion points: global kill switch on", order.pk)
        return None, False
    membership = membership_for(order.customer, program)
    if membership is None:
        if not program.auto_enroll:
            return None, False
        membership, _ = member_join(customer=order.customer, program=program, at=at, cause=cause)
    balance = balance_lock(membership.pk)
    existing = PointLot.objects.filter(source_key=source_key).first()  # re-read under the member's lock
    if existing is not None:
        return existing, False
    membership = Membership.objects.select_related("program", "tier", "customer").get(pk=membership.pk)
    ledger = MemberLedger(balance=balance, at=at, cause=cause or f"order:{order.pk}")
    lot = lot_create(
        ledger,
        membership=membership,
        amount=points,
        source_type=SourceType.PROMOTION,
        source_key=source_key,
        reason=reason,
        order=order,
    )
    Membership.objects.filter(pk=membership.pk).update(last_activity_at=at)
    ledger.flush()
    return lot, True


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
    if order.status != OrderStatus.CANCELLED:
        # A promotion's extra points (a campaign's multiplier) are not in the plan: each keeps what it was given,
        # less the refunded share below — an edit neither takes them back nor tops them up.
        for source, source_lots in by_source.items():
            if source_lots[0].source_type == SourceType.PROMOTION:
                plan[source] = (None, sum(lot.amount for lot in source_lots))
    for source in sorted(set(plan) | set(by_source)):
        rule, points = plan.get(source, (None, 0))
        promotion = source in by_source and by_source[source][0].source_type == SourceType.PROMOTION
        if points and order.total > 0 and order.refunded_total:
            points -= int(
                (Decimal(points) * order.refunded_total / order.total).to_integral_value(rounding="ROUND_DOWN")
            )
        held = sum(lot.amount - lot.reversed_amount for lot in by_source.get(source, []))
        if points > held and not promotion and not kill_switch_is_on():
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
