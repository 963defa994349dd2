"""
Loyalty's outbox consumer: orders earn, cancellations, refunds and edits take back, named custom events earn
fixed points — one event at a time (`domain_event_earn`), or on PostgreSQL in batches
(`domain_events_earn_batch`, the task `apps.loyalty.tasks.domain_event_consume`), the shape of the workflow
engine's consumer (`apps.automations.engine.opening.domain_events_process_batch`):

- A task claims up to `LOYALTY_EVENT_BATCH` pending events loyalty has not consumed, its own event first, and
  earns them in one transaction: the ledger rows, lots, balances, tiers, referral effects, the events they emit
  and loyalty's receipts commit together, one commit per batch. A transient database error (a lost connection,
  a deadlock) rolls the batch back whole and the task runs it again; a non-transient error in one event rolls
  back that event's savepoint only: it stays pending, counted (`EarningBatchClaim`), and is earned alone
  afterwards. A backlog (events older than the outbox grace) drains in batches too, each claim counted with a
  lease in a commit of its own first, so an event that kills its worker takes at most one batch down with it.
- The first orders of distinct customers (the common case: no other event of the customer in the batch, no
  lots yet, no open hold, not flagged, no referral waiting for the purchase, no rule with points limits or on
  product tags) earn set-based in one savepoint (`orders_points_earn_many`): the statements do not grow with
  the batch. The others go one by one, each in its own savepoint, through the per-event services.

Drains (the outbox's coalescing, see `apps.customers.outbox`): on PostgreSQL with batches a write sends no task
per event but loyalty's drain (`domain_events_earn_drain`, the task `apps.loyalty.tasks.domain_events_drain`)
when none is queued; it clears the mark, then earns batches until a claim comes back short.

How batches are claimed: the engine locks the outbox rows its batches take (`FOR NO KEY UPDATE SKIP LOCKED`). A
second consumer locking the same rows would make each skip the other's events and leave them to the sweep, so
loyalty's batches lock the event ids under a key of their own instead: transaction-level advisory locks, taken
with `pg_try_advisory_xact_lock` (the analogue of SKIP LOCKED) — and only then read which events still lack
loyalty's receipt (a batch that committed just before has released its locks only after its receipts became
visible). Every earning of an event happens under that event's lock, after that check: exactly once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from apps.customers import outbox
from apps.customers.choices import CustomerStatus, DomainEventStatus, OrderStatus
from apps.customers.models import CustomerEvent, DomainEvent, DomainEventReceipt, Order
from apps.platform.kill_switch import kill_switch_is_on
from loyalty_site.lib import tasks as task_queue
from loyalty_site.lib.tasks import db_error_is_transient, retry_transient

from ..choices import HoldStatus, ReferralStatus, RuleKind, SourceType
from ..models import EarningBatchClaim, EarningRule, Membership, PointHold, PointLot, Program, Referral
from ..receivers import CONSUMER, CUSTOM_EVENT, ORDER_CREATED, ORDER_REVERSED, ORDER_UPDATED
from .earning import (
    ORDER_RULE_KINDS,
    event_points_earn,
    order_points_adjust,
    order_points_earn,
    order_points_plan,
    order_points_reverse,
    rules_active,
)
from .ledger import (
    MemberLedger,
    balances_lock,
    lot_build,
    lots_write_many,
    members_join_many,
    membership_for,
    program_default,
)
from .referrals import referral_qualify
from .tiers import tier_recalculate, tiers_recalculate_many

logger = logging.getLogger(__name__)

CONSUMED = (ORDER_CREATED, *ORDER_REVERSED, ORDER_UPDATED, CUSTOM_EVENT)

# The advisory-lock class of loyalty's earning claims ("LOYA"); the second key is the event id (mod 2^31 - 1).
CLAIM_LOCK_CLASS = 0x4C4F5941
_INT4 = 2147483647


# --- one event ---------------------------------------------------------------------------------------------


def order_earn(order_id: int | None) -> int:
    """An order's points, a referral waiting for this purchase, the member's tier. Returns the points earned."""
    if order_id is None:
        return 0
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return 0
    lots = order_points_earn(order=order)
    referral_qualify(customer=order.customer)
    membership = membership_for(order.customer)
    if membership is not None:
        tier_recalculate(membership=membership, cause=f"order:{order_id}")
    return sum(lot.amount for lot in lots)


def order_take_back(order_id: int | None) -> int:
    """A refund, cancellation or edit: the order's points follow it, then the member's tier. Returns points taken."""
    if order_id is None:
        return 0
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return 0
    # An edited order's points are kept by source against its edited plan (the proportional reversal of a
    # never-edited order would not see what an edit added or took back).
    taken = abs(order_points_adjust(order=order)) if order.edited_at is not None else order_points_reverse(order=order)
    membership = membership_for(order.customer)
    if membership is not None:
        tier_recalculate(membership=membership, cause=f"order:{order_id}")
    return taken


def custom_event_earn(custom_event_id: int | None) -> int:
    """A named custom event's fixed points, then the member's tier. Returns the points earned."""
    if custom_event_id is None:
        return 0
    custom_event = CustomerEvent.objects.select_related("customer").filter(pk=custom_event_id).first()
    if custom_event is None:
        return 0
    lots = event_points_earn(custom_event=custom_event)
    membership = membership_for(custom_event.customer)
    if lots and membership is not None:
        tier_recalculate(membership=membership, cause=f"event:{custom_event_id}")
    return sum(lot.amount for lot in lots)


def domain_event_earn(event: DomainEvent) -> int:
    """What loyalty does for one outbox event (without its receipt). Returns the points moved."""
    payload = event.payload or {}
    if event.name == ORDER_CREATED:
        return order_earn(payload.get("order_id"))
    if event.name in ORDER_REVERSED or event.name == ORDER_UPDATED:
        return order_take_back(payload.get("order_id"))
    if event.name == CUSTOM_EVENT:
        return custom_event_earn(payload.get("custom_event_id"))
    return 0


def domain_event_consume_one(*, event_id: int) -> int:
    """
    Earn one event and record loyalty's receipt (SQLite, `LOYALTY_EVENT_BATCH=1`, an event a batch failed on).
    On PostgreSQL under the event's claim lock, after checking the receipt; a transient error is retried here.
    """

    def consume() -> int:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _lock_wait([event_id])
            event = _unconsumed([event_id]).first()
            if event is None:
                return 0
            moved = domain_event_earn(event)
            EarningBatchClaim.objects.filter(event_id=event.pk).delete()
            outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
        return moved

    return retry_transient(consume, what=f"loyalty: outbox event {event_id}")


# --- many first orders at once -----------------------------------------------------------------------------


def orders_points_earn_many(
    *, orders: Sequence[Order], program: Program, rules: Sequence[EarningRule], at: datetime | None = None
) -> dict[int, int]:
    """
    `order_earn` for orders of distinct customers at once, writing what it writes order by order: the members
    enrolled (`members_join_many`), their Balance rows locked in pk order (one query), each order's plan
    (`order_points_plan` with `rules` read once), one insert for the lots, one for the ledger entries, one update
    of the balances and one of the members' activity (`lots_write_many`), then the tiers
    (`tiers_recalculate_many`). Returns order id -> points earned.

    The caller sends only what this path covers (`_lane_split`): the program active and the kill switch off;
    orders not cancelled, without lots, of active (not blocked, not flagged) customers without an open hold or a
    referral waiting for the purchase; no live rule with points limits or on product tags, no excluded product
    tags. Call inside a transaction.
    """
    at = at or timezone.now()
    orders = sorted(orders, key=lambda order: order.customer_id)
    members = dict(
        Membership.objects.filter(program=program, customer_id__in=[order.customer_id for order in orders])
        .values_list("customer_id", "pk")
        .order_by()
    )
    missing = [order.customer for order in orders if order.customer_id not in members]
    if missing and program.auto_enroll:
        joined = members_join_many(joins=[(customer, "") for customer in missing], program=program, at=at)
        members.update({customer_id: member.pk for customer_id, member in joined.items()})
    if not members:
        return {}
    balances = balances_lock(sorted(members.values()))
    memberships = {
        member.customer_id: member
        for member in Membership.objects.filter(pk__in=balances).select_related(
            "program", "tier", "tier_floor", "customer"
        )
    }
    ledgers: dict[int, MemberLedger] = {}
    lots = []
    causes: dict[int, str] = {}
    for order in orders:
        membership = memberships.get(order.customer_id)
        if membership is None:
            continue  # not a member of a program that does not enrol: nothing, as order by order
        ledger = MemberLedger(balance=balances[membership.pk], at=at, cause=f"order:{order.pk}")
        ledgers[membership.pk] = ledger
        causes[membership.pk] = ledger.cause
        # No rule here has points limits (the caller's promise), so a plan's points are what the lots get.
        for source_key, rule, points in order_points_plan(order, membership, at, rules):
            if points <= 0:
                continue
            lots.append(
                lot_build(
                    ledger,
                    membership=membership,
                    amount=points,
                    source_type=SourceType.ORDER if rule is None else SourceType.RULE,
                    source_key=source_key,
                    reason=f"Order {order}" if rule is None else f"Order {order}: {rule.name}",
                    rule=rule,
                    order=order,
                )
            )
    lots_write_many(lots, ledgers, at=at, every_member=True)
    tiers_recalculate_many(
        memberships=[memberships[order.customer_id] for order in orders if order.customer_id in memberships],
        program=program,
        at=at,
        causes=causes,
    )
    earned: dict[int, int] = dict.fromkeys([order.pk for order in orders], 0)
    for lot in lots:
        assert lot.order_id is not None
        earned[lot.order_id] += lot.amount
    return earned


def _lane_split(
    events: Sequence[DomainEvent], at: datetime
) -> tuple[list[tuple[DomainEvent, Order]], list[DomainEvent], Program | None, list[EarningRule]]:
    """The events `orders_points_earn_many` covers (with their orders), the others, the program and its rules."""
    created = [
        event
        for event in events
        if event.name == ORDER_CREATED and isinstance((event.payload or {}).get("order_id"), int)
    ]
    if not created:
        return [], list(events), None, []
    program = program_default()
    if program is None or program.excluded_product_tags or kill_switch_is_on():
        return [], list(events), program, []
    rules = rules_active(program, ORDER_RULE_KINDS)
    if any(rule.kind == RuleKind.PRODUCT_TAG_MULTIPLIER or rule.limits.all() for rule in rules if rule.is_live(at)):
        return [], list(events), program, rules
    order_ids = [event.payload["order_id"] for event in created]
    orders = {order.pk: order for order in Order.objects.filter(pk__in=order_ids).select_related("customer")}
    customer_ids = [order.customer_id for order in orders.values()]
    earned = set(PointLot.objects.filter(order_id__in=order_ids).values_list("order_id", flat=True).order_by())
    held = set(
        PointHold.objects.filter(
            status=HoldStatus.OPEN, membership__program=program, membership__customer_id__in=customer_ids
        )
        .values_list("membership__customer_id", flat=True)
        .order_by()
    )
    referred = set(
        Referral.objects.filter(referee_id__in=customer_ids, status=ReferralStatus.REGISTERED)
        .values_list("referee_id", flat=True)
        .order_by()
    )
    # A customer with another event in the batch goes one event at a time, in order: each sees the last's effects.
    per_customer = Counter(event.customer_id for event in events)
    lane: list[tuple[DomainEvent, Order]] = []
    for event in created:
        order = orders.get(event.payload["order_id"])
        if (
            order is None
            or order.status == OrderStatus.CANCELLED
            or order.customer.status != CustomerStatus.ACTIVE
            or per_customer[event.customer_id] > 1
            or event.customer_id != order.customer_id
            or order.pk in earned
            or order.customer_id in held
            or order.customer_id in referred
        ):
            continue
        lane.append((event, order))
    taken = {event.pk for event, _ in lane}
    return lane, [event for event in events if event.pk not in taken], program, rules


# --- batches -----------------------------------------------------------------------------------------------


def _unconsumed(ids: Sequence[int]) -> QuerySet[DomainEvent]:
    """The events among `ids` still without loyalty's receipt, in pk order (read after their locks are ours)."""
    receipted = DomainEventReceipt.objects.filter(event=OuterRef("pk"), consumer=CONSUMER)
    return (
        DomainEvent.objects.filter(pk__in=ids)
        .exclude(Exists(receipted))
        .only("pk", "name", "payload", "customer_id", "created_at")
        .order_by("pk")
    )


def _lock_wait(ids: Sequence[int]) -> None:
    """Wait for the claim locks of these events (ascending, so two waiters never deadlock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_xact_lock(%s, (id %% {_INT4})::int) FROM unnest(%s::bigint[]) AS id ORDER BY id",  # noqa: S608
            [CLAIM_LOCK_CLASS, sorted(ids)],
        )


def _state(event_id: int) -> tuple[datetime, bool, int | None, datetime | None] | None:
    """
    (created at, consumed by loyalty?, batch claims, lease) of one event, in plain SQL (no ORM build): every
    event's task asks it, and most find their event earned by another task's batch.
    """
    event_table = DomainEvent._meta.db_table
    receipt_table = DomainEventReceipt._meta.db_table
    claim_table = EarningBatchClaim._meta.db_table
    sql = f"""
        SELECT e.created_at,
               EXISTS (SELECT 1 FROM {receipt_table} r WHERE r.event_id = e.id AND r.consumer = %s),
               c.claims, c.claimed_at
          FROM {event_table} e LEFT JOIN {claim_table} c ON c.event_id = e.id
         WHERE e.id = %s
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [CONSUMER, event_id])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


def _claim(*, event_id: int | None, limit: int, fresh_since: datetime, backlog: bool) -> list[int]:
    """
    Lock up to `limit` event ids with loyalty's claim lock, skipping those another batch holds: `event_id` first
    (when given: a task's own event), then the oldest pending events loyalty consumes, has not consumed, and no
    batch counted — fresh ones (created since `fresh_since`), or with `backlog` the older ones. Returns the ids
    locked (the caller re-reads them).
    """
    event_table = DomainEvent._meta.db_table
    receipt_table = DomainEventReceipt._meta.db_table
    claim_table = EarningBatchClaim._meta.db_table
    age = "<" if backlog else ">="
    own = "(SELECT %s::bigint AS id) UNION ALL" if event_id is not None else ""
    # Only table names from model meta are interpolated; the values are parameters.
    sql = f"""
        SELECT candidate.id FROM (
            {own}
            (SELECT e.id FROM {event_table} e
              WHERE e.status = %s AND e.name = ANY(%s) AND e.created_at {age} %s AND e.id <> %s
                AND NOT EXISTS (SELECT 1 FROM {receipt_table} r WHERE r.event_id = e.id AND r.consumer = %s)
                AND NOT EXISTS (SELECT 1 FROM {claim_table} c WHERE c.event_id = e.id)
              ORDER BY e.id LIMIT %s)
        ) candidate
        WHERE pg_try_advisory_xact_lock(%s, (candidate.id %% {_INT4})::int)
        LIMIT %s
    """  # noqa: S608
    params: list[Any] = [
        *([event_id] if event_id is not None else []),
        DomainEventStatus.PENDING,
        list(CONSUMED),
        fresh_since,
        event_id if event_id is not None else 0,
        CONSUMER,
        # Candidates beyond the batch: the locks other batches hold are skipped, the next ones taken instead.
        4 * limit,
        CLAIM_LOCK_CLASS,
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(dict.fromkeys(row[0] for row in cursor.fetchall()))


def _receipts_record(event_ids: Sequence[int]) -> None:
    DomainEventReceipt.objects.bulk_create(
        [DomainEventReceipt(event_id=pk, consumer=CONSUMER) for pk in event_ids], ignore_conflicts=True
    )
    outbox.domain_events_settle(event_ids=event_ids)


def _claimed_earn(events: Sequence[DomainEvent]) -> tuple[list[int], list[int], int]:
    """
    Earn claimed events inside the caller's transaction: the set-based lane in one savepoint, the rest one by
    one each in its own. Returns (the ids earned, the ids that failed, the points moved). A transient error
    propagates.
    """
    at = timezone.now()
    lane, alone, program, rules = _lane_split(events, at)
    earned: list[int] = []
    moved = 0
    if lane:
        assert program is not None
        try:
            with transaction.atomic():  # one savepoint for the whole lane
                points = orders_points_earn_many(
                    orders=[order for _, order in lane], program=program, rules=rules, at=at
                )
            earned.extend(event.pk for event, _ in lane)
            moved += sum(points.values())
        except Exception as error:
            if db_error_is_transient(error):
                raise  # the whole batch rolls back and is run again
            # Its writes rolled back; its events go one by one, each in its own savepoint, so a poison is isolated.
            logger.warning("loyalty: %s orders earned one by one: %s", len(lane), error)
            alone = list(events)
    failed: list[int] = []
    for event in sorted(alone, key=lambda row: (row.customer_id or 0, row.pk)):
        try:
            with transaction.atomic():
                moved += domain_event_earn(event)
            earned.append(event.pk)
        except Exception as error:
            if db_error_is_transient(error):
                raise
            # A bug for this one event must not hold back the others: it stays pending (no receipt), counted, and
            # is earned alone when the outbox sweep drives it again.
            logger.exception("loyalty: event %s not earned in its batch: %s", event.pk, error)
            failed.append(event.pk)
    return earned, failed, moved


def _claimed_record(earned: Sequence[int], failed: Sequence[int], *, backlog: bool) -> None:
    """Receipts of the earned events, a count on the failed ones (the lease ended), in the batch's transaction."""
    if failed:
        EarningBatchClaim.objects.bulk_create(
            [EarningBatchClaim(event_id=pk, claims=1, claimed_at=None) for pk in failed],
            update_conflicts=True,
            unique_fields=["event"],
            update_fields=["claimed_at"],  # a backlog batch counted its claim already
        )
    if earned:
        if backlog:
            EarningBatchClaim.objects.filter(event_id__in=earned).delete()
        _receipts_record(earned)


def domain_events_earn_batch(*, event_id: int, limit: int | None = None) -> int:
    """
    Loyalty's outbox task: earn this event — on PostgreSQL with up to `limit` (`LOYALTY_EVENT_BATCH`) other pending
    events in one transaction (see the module). An event a batch failed on, or whose backlog batch died, is earned
    alone (`domain_event_consume_one`); while a backlog batch's lease lasts, its events' tasks leave them to it.
    Falls back to one event on SQLite or with a limit of 1. Returns the points moved (earned or taken back).
    """
    limit = settings.LOYALTY_EVENT_BATCH if limit is None else limit
    if limit <= 1 or connection.vendor != "postgresql":
        return domain_event_consume_one(event_id=event_id)
    now = timezone.now()
    state = _state(event_id)
    if state is None or state[1]:
        return 0
    _, _, claims, claimed_at = state
    if claims:
        if claimed_at is not None and claimed_at > now - _lease():
            return 0  # a backlog batch is at work on it; if it dies, the lease ends and the sweep drives it again
        return domain_event_consume_one(event_id=event_id)
    fresh_since = now - outbox.OUTBOX_GRACE
    if state[0] < fresh_since:
        return _backlog_earn(event_id=event_id, limit=limit, fresh_since=fresh_since, now=now)[1]

    return retry_transient(
        lambda: _fresh_earn(event_id=event_id, limit=limit, fresh_since=fresh_since)[1],
        what=f"loyalty: batch of event {event_id}",
    )


def _fresh_earn(*, event_id: int | None, limit: int, fresh_since: datetime) -> tuple[int, int]:
    """Fresh events (`event_id` first, when given) earned in one transaction: (events locked, points moved)."""
    with transaction.atomic():
        ids = _claim(event_id=event_id, limit=limit, fresh_since=fresh_since, backlog=False)
        events = list(_unconsumed(ids)) if ids else []
        earned, failed, moved = _claimed_earn(events)
        _claimed_record(earned, failed, backlog=False)
    return len(ids), moved


# How long one drain task keeps claiming batches before handing over to a fresh task (well under the
# django-q2 timeout; other tasks get a worker in between).
DRAIN_SECONDS = 10.0
TASK = "apps.loyalty.tasks.domain_event_consume"


def domain_events_earn_drain(*, limit: int | None = None, seconds: float = DRAIN_SECONDS) -> int:
    """
    Loyalty's drain task (the outbox's coalescing, see `apps.customers.outbox`), the loop of
    `loyalty_site.lib.tasks.drain_run` as the engine's `domain_events_drain`: clear the "drain queued" mark, then
    earn batches of pending events — fresh ones; a backlog's after a short claim, once per drain or when the fresh
    claim was empty — until a claim comes back short (after one that took something it lingers a moment, holding
    the mark, and claims again). After a full batch it asks for a helper drain; after `seconds` it stops. Returns
    the points moved.
    """
    limit = settings.LOYALTY_EVENT_BATCH if limit is None else limit
    if limit <= 1 or connection.vendor != "postgresql":  # no batches here (the outbox sends no drain then)
        outbox.outbox_drain_started(CONSUMER)
        pending = DomainEvent.objects.filter(status=DomainEventStatus.PENDING, name__in=CONSUMED)
        ids = list(_unconsumed(list(pending.values_list("pk", flat=True)[:50])).values_list("pk", flat=True))
        return sum(domain_event_consume_one(event_id=pk) for pk in ids)
    moved = [0]

    def fresh(size: int) -> int:
        taken, points = _fresh_earn(event_id=None, limit=size, fresh_since=timezone.now() - outbox.OUTBOX_GRACE)
        moved[0] += points
        return taken

    def backlog(size: int) -> int:
        now = timezone.now()
        taken, points = _backlog_earn(event_id=None, limit=size, fresh_since=now - outbox.OUTBOX_GRACE, now=now)
        moved[0] += points
        return taken

    task_queue.drain_run(TASK, fresh=fresh, backlog=backlog, limit=limit, seconds=seconds, what="loyalty: drain")
    return moved[0]


def _backlog_earn(*, event_id: int | None, limit: int, fresh_since: datetime, now: datetime) -> tuple[int, int]:
    """
    A batch of events older than the outbox grace: the claim (a count and a lease per event) commits first, then
    the events are earned in one transaction as a fresh batch is, under their claim locks taken again (waiting
    for them: they are ours). A transient error runs the earning again; if the worker dies, the count stays and
    each of its events is earned alone after the lease. Returns (events claimed, points moved).
    """
    with transaction.atomic():
        ids = _claim(event_id=event_id, limit=limit, fresh_since=fresh_since, backlog=True)
        ids = [pk for (pk,) in _unconsumed(ids).values_list("pk")] if ids else []
        EarningBatchClaim.objects.bulk_create(
            [EarningBatchClaim(event_id=pk, claims=1, claimed_at=now) for pk in ids], ignore_conflicts=True
        )
    if not ids:
        return 0, 0

    def batch() -> int:
        with transaction.atomic():
            _lock_wait(ids)
            events = list(_unconsumed(ids))
            earned, failed, moved = _claimed_earn(events)
            _claimed_record(earned, failed, backlog=True)
        return moved

    return len(ids), retry_transient(batch, what=f"loyalty: backlog batch of {len(ids)} events")


def _lease() -> timedelta:
    """How long a backlog batch's claim keeps other tasks off its events: the django-q2 timeout and a margin."""
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    return timedelta(seconds=int(q_cluster.get("timeout", 120)) + 10)
