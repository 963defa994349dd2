"""
The points ledger: lots, spends with FEFO allocations, reversals, and the balance row kept in step.

Locking: every write to a member's points first locks that member's Balance row; where several members
are involved their Balance rows are locked in pk order. The global order is
Balance (by pk) → EarningRule → PointLot (by pk) → Reward, so two writers can never wait on each other
in a cycle. Counters are moved with F() expressions in the same transaction as the ledger rows.
"""

import calendar
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.db.models.expressions import Combinable
from django.utils import timezone

from apps.customers.choices import CustomerStatus, DomainEventStatus
from apps.customers.models import Customer, DomainEvent, Order
from apps.customers.outbox import domain_event_emit, domain_event_listened, domain_events_dispatch_ids
from loyalty_site.lib.errors import DomainError
from loyalty_site.lib.rows_update import rows_update

from .. import signals
from ..choices import EntryKind, ExpiryPolicy, HoldStatus, LotStatus, ReturnPolicy, Rounding, SourceType
from ..models import (
    Balance,
    EarningRule,
    LedgerEntry,
    Membership,
    PointAllocation,
    PointHold,
    PointLot,
    Program,
    Tier,
)
from .limits import lot_limits_give_back

# The outbox event of every ledger movement (earn, spend, expire, adjust, activation, hold, release, reversal):
# what re-evaluates state tags on loyalty fields (balance, pending, lifetime points) for the member's customer.
POINTS_CHANGED = "loyalty.points_changed"

ROUNDING_MODES = {Rounding.DOWN: ROUND_DOWN, Rounding.NEAREST: ROUND_HALF_UP, Rounding.UP: ROUND_CEILING}


def points_round(value: Decimal, rounding: str) -> int:
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUNDING_MODES[Rounding(rounding)]))


def program_default() -> Program | None:
    """The program events earn in: the oldest active one."""
    return Program.objects.filter(is_active=True).order_by("pk").first()


def _month_start(at: datetime) -> datetime:
    local = timezone.localtime(at)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def expiry_for(*, program: Program, tier: Tier | None, activates_at: datetime) -> datetime | None:
    """When points activated at `activates_at` expire; None = never (or only through inactivity)."""
    if tier is not None and tier.expiry_days_override:
        return activates_at + timedelta(days=tier.expiry_days_override)
    policy = program.expiry_policy
    if policy == ExpiryPolicy.DAYS_AFTER_ACTIVATION:
        return activates_at + timedelta(days=program.expiry_days)
    if policy == ExpiryPolicy.END_OF_MONTH:
        start = _month_start(activates_at)
        days = calendar.monthrange(start.year, start.month)[1]
        return start + timedelta(days=days)
    if policy == ExpiryPolicy.END_OF_YEAR:
        local = timezone.localtime(activates_at)
        return local.replace(year=local.year + 1, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return None


# --- the in-transaction ledger writer ---------------------------------------------------------------


@dataclass
class MemberLedger:
    """
    Collects one member's entries while their Balance row is locked, then writes entries and counters
    together. `balance` holds the locked values, so `active_after` on each entry is exact.
    """

    balance: Balance
    at: datetime
    actor: Any = None
    cause: str = ""
    entries: list[LedgerEntry] = field(default_factory=list)
    allocations: list[tuple[LedgerEntry, PointAllocation]] = field(default_factory=list)
    deltas: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("active", "pending", "debt", "lifetime_earned", "lifetime_spent", "lifetime_expired"), 0
        )
    )

    def move(self, **deltas: int) -> None:
        for name, value in deltas.items():
            self.deltas[name] += value
            setattr(self.balance, name, getattr(self.balance, name) + value)

    def entry(
        self,
        kind: str,
        *,
        active: int = 0,
        pending: int = 0,
        debt: int = 0,
        lot: PointLot | None = None,
        redemption: Any = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> LedgerEntry:
        self.move(active=active, pending=pending, debt=debt)
        entry = LedgerEntry(
            membership_id=self.balance.membership_id,
            kind=kind,
            active_delta=active,
            pending_delta=pending,
            debt_delta=debt,
            active_after=self.balance.active,
            lot=lot,
            redemption=redemption,
            reason=reason[:255],
            actor=self.actor,
            cause=self.cause[:64],
            idempotency_key=idempotency_key,
            created_at=self.at,
        )
        self.entries.append(entry)
        return entry

    def allocate(self, entry: LedgerEntry, lot: PointLot, amount: int) -> None:
        self.allocations.append((entry, PointAllocation(lot=lot, amount=amount)))

    def flush(self, *, refresh_expiring: bool = True) -> None:
        """Write entries and allocations, and move the counters with F() in one UPDATE."""
        LedgerEntry.objects.bulk_create(self.entries)
        if self.allocations:
            for entry, allocation in self.allocations:
                allocation.entry_id = entry.pk
            PointAllocation.objects.bulk_create([allocation for _, allocation in self.allocations])
        changes: dict[str, Combinable | int] = {name: F(name) + value for name, value in self.deltas.items() if value}
        if refresh_expiring:
            self.balance.expiring_soon = _expiring_soon(self.balance.membership_id, self.at)
            changes["expiring_soon"] = self.balance.expiring_soon
        Balance.objects.filter(pk=self.balance.pk).update(**changes, updated_at=self.at)
        points_moved_emit(self)
        self.entries, self.allocations = [], []
        self.deltas = dict.fromkeys(self.deltas, 0)


def _movement_payload(ledger: MemberLedger) -> dict[str, Any]:
    """What moved in this ledger since its last write: the kinds of entries, the deltas and the balance after."""
    return {
        "membership_id": ledger.balance.membership_id,
        "kinds": sorted({entry.kind for entry in ledger.entries}),
        "active_delta": sum(entry.active_delta for entry in ledger.entries),
        "pending_delta": sum(entry.pending_delta for entry in ledger.entries),
        "debt_delta": sum(entry.debt_delta for entry in ledger.entries),
        "balance": ledger.balance.active - ledger.balance.debt,
        "pending": ledger.balance.pending,
    }


def points_moved_emit(ledger: MemberLedger) -> DomainEvent | None:
    """
    Announce one member's ledger movement through the outbox (inside the writer's transaction, so a rollback
    leaves no event): one `loyalty.points_changed` per write, only when some consumer listens to it.
    """
    if not ledger.entries or not domain_event_listened(POINTS_CHANGED):
        return None
    membership = Membership.objects.select_related("customer").get(pk=ledger.balance.membership_id)
    return domain_event_emit(
        signal=signals.points_changed,
        name=POINTS_CHANGED,
        customer=membership.customer,
        payload=_movement_payload(ledger),
        cause=ledger.cause,
        sender=Membership,
        membership=membership,
    )


def points_moved_emit_bulk(ledgers: Sequence[MemberLedger]) -> list[int]:
    """
    `points_moved_emit` for a batch job's members (activation, expiry): one set-based insert of their events,
    handed to the consumers after commit. Call before the ledgers' entries are cleared. Returns the event ids.
    """
    moved = [ledger for ledger in ledgers if ledger.entries]
    if not moved or not domain_event_listened(POINTS_CHANGED):
        return []
    customers = dict(
        Membership.objects.filter(pk__in=[ledger.balance.membership_id for ledger in moved]).values_list(
            "pk", "customer_id"
        )
    )
    events = DomainEvent.objects.bulk_create(
        [
            DomainEvent(
                name=POINTS_CHANGED,
                customer_id=customers[ledger.balance.membership_id],
                payload=_movement_payload(ledger),
                cause=ledger.cause[:64],
            )
            for ledger in moved
        ]
    )
    event_ids = [event.pk for event in events]
    transaction.on_commit(partial(domain_events_dispatch_ids, event_ids), robust=True)
    return event_ids


def _expiring_soon(membership_id: int, at: datetime) -> int:
    notice = Membership.objects.filter(pk=membership_id).values_list("program__expiry_notice_days", flat=True).first()
    horizon = at + timedelta(days=notice or 0)
    total = PointLot.objects.filter(
        membership_id=membership_id,
        status=LotStatus.ACTIVE,
        remaining__gt=0,
        expires_at__gt=at,
        expires_at__lte=horizon,
    ).aggregate(total=Sum("remaining"))["total"]
    return total or 0


def balance_lock(membership_id: int) -> Balance:
    return Balance.objects.select_for_update().get(pk=membership_id)


def balances_lock(membership_ids: list[int]) -> dict[int, Balance]:
    rows = Balance.objects.filter(pk__in=membership_ids).order_by("pk").select_for_update()
    return {balance.pk: balance for balance in rows}


def lots_lock(query: Q) -> list[PointLot]:
    return list(PointLot.objects.filter(query).order_by("pk").select_for_update())


def fefo_key(lot: PointLot) -> tuple:
    """Soonest-expiring first; never-expiring last; then oldest."""
    far = datetime.max.replace(tzinfo=timezone.get_current_timezone())
    return (lot.expires_at or far, lot.activates_at, lot.pk)


# --- membership ---------------------------------------------------------------------------------------


@transaction.atomic
def member_join(
    *,
    customer: Customer,
    program: Program | None = None,
    referred_by: Membership | None = None,
    at: datetime | None = None,
    cause: str = "",
) -> tuple[Membership, bool]:
    """Enrol a customer (idempotent): creates the membership and its balance, sends `member_joined` once."""
    program = program or program_default()
    if program is None:
        raise DomainError("No active loyalty program.", path="program", code="no_program")
    at = at or timezone.now()
    entry_tier = program.tiers.filter(threshold__lte=0).order_by("-rank").first()
    membership, created = Membership.objects.get_or_create(
        program=program,
        customer=customer,
        defaults={
            "joined_at": at,
            "referred_by": referred_by,
            "tier": entry_tier,
            "tier_since": at if entry_tier else None,
            "last_activity_at": at,
        },
    )
    if created:
        Balance.objects.create(membership=membership, updated_at=at)
        domain_event_emit(
            signal=signals.member_joined,
            name="member.joined",
            customer=customer,
            payload={"membership_id": membership.pk, "program_id": program.pk},
            cause=cause,
            sender=Membership,
            membership=membership,
        )
    return membership, created


def members_join_many(
    *, joins: Sequence[tuple[Customer, str]], program: Program | None = None, at: datetime | None = None
) -> dict[int, Membership]:
    """
    `member_join` for many customers at once (a batch of workflow runs awarding points): the memberships of
    those already members, and for the others one insert of memberships, one of balances and their
    `member.joined` events as `member_join` writes them, each with its customer's cause (row by row through
    the outbox when someone listens, else one insert written processed). Returns customer id -> membership
    (with program and tier).
    Call inside a transaction: no savepoint of its own.
    """
    program = program or program_default()
    if program is None:
        raise DomainError("No active loyalty program.", path="program", code="no_program")
    at = at or timezone.now()
    causes: dict[int, str] = {}
    for customer, cause in joins:
        causes.setdefault(customer.pk, cause)
    ids = set(causes)

    def members() -> dict[int, Membership]:
        rows = Membership.objects.filter(program=program, customer_id__in=ids).select_related("program", "tier")
        return {member.customer_id: member for member in rows}

    found = members()
    # Inserted in customer order: two batches enrolling overlapping customers (the engine's award, loyalty's
    # earning) wait on each other's rows in the same order instead of deadlocking.
    missing = sorted(
        (customer for customer in {c.pk: c for c, _ in joins}.values() if customer.pk not in found),
        key=lambda customer: customer.pk,
    )
    if not missing:
        return found
    entry_tier = program.tiers.filter(threshold__lte=0).order_by("-rank").first()
    Membership.objects.bulk_create(
        [
            Membership(
                program=program,
                customer=customer,
                joined_at=at,
                tier=entry_tier,
                tier_since=at if entry_tier else None,
                last_activity_at=at,
            )
            for customer in missing
        ],
        ignore_conflicts=True,  # a concurrent join: theirs stands, and sent its own event
    )
    found = members()
    joined = [found[customer.pk] for customer in missing if found[customer.pk].joined_at == at]
    Balance.objects.bulk_create([Balance(membership=member, updated_at=at) for member in joined], ignore_conflicts=True)
    by_id = {customer.pk: customer for customer in missing}
    if domain_event_listened("member.joined"):
        for member in joined:
            domain_event_emit(
                signal=signals.member_joined,
                name="member.joined",
                customer=by_id[member.customer_id],
                payload={"membership_id": member.pk, "program_id": program.pk},
                cause=causes[member.customer_id],
                sender=Membership,
                membership=member,
            )
    else:  # nobody consumes them now: written processed at once, as domain_event_emit does
        events = DomainEvent.objects.bulk_create(
            DomainEvent(
                name="member.joined",
                customer=by_id[member.customer_id],
                payload={"membership_id": member.pk, "program_id": program.pk},
                cause=causes[member.customer_id][:64],
                status=DomainEventStatus.PROCESSED,
                created_at=at,
                processed_at=at,
            )
            for member in joined
        )

        def announce() -> None:
            for event, member in zip(events, joined, strict=True):
                signals.member_joined.send(
                    sender=Membership, event=event, customer=by_id[member.customer_id], membership=member
                )

        transaction.on_commit(announce, robust=True)
    return found


def membership_for(customer: Customer, program: Program | None = None) -> Membership | None:
    program = program or program_default()
    if program is None:
        return None
    return Membership.objects.select_related("program", "tier").filter(program=program, customer=customer).first()


# --- customer status (fraud): blocked earns and redeems nothing, flagged earns held points -------------


def customer_blocked_refuse(customer_id: int, *, doing: str) -> None:
    """Raise `customer_blocked` when the customer is blocked (one indexed lookup)."""
    if Customer.objects.filter(pk=customer_id, status=CustomerStatus.BLOCKED).exists():
        raise DomainError(f"This customer is blocked and cannot {doing}.", path="customer", code="customer_blocked")


def _hold_for(membership: Membership, source_key: str, status: str, at: datetime) -> PointHold | None:
    """The open hold a new lot joins: one whose prefix matches its source, or the flagged customer's hold."""
    holds = list(PointHold.objects.filter(membership_id=membership.pk, status=HoldStatus.OPEN))
    for hold in sorted(holds, key=lambda row: -len(row.source_prefix)):
        if source_key.startswith(hold.source_prefix):
            return hold
    if status != CustomerStatus.FLAGGED:
        return None
    reason = Customer.objects.filter(pk=membership.customer_id).values_list("status_reason", flat=True).first()
    return PointHold.objects.create(
        membership_id=membership.pk,
        source_prefix="",
        reason=f"Customer flagged: {reason or 'no reason given'}"[:255],
        cause="customer_flagged",
        created_at=at,
    )


# --- lots ---------------------------------------------------------------------------------------------


def lot_create(
    ledger: MemberLedger,
    *,
    membership: Membership,
    amount: int,
    source_type: str,
    source_key: str,
    reason: str = "",
    rule: EarningRule | None = None,
    order: Order | None = None,
    pending_days: int | None = None,
) -> PointLot:
    """
    Create a lot inside a transaction holding the member's Balance lock (callers check the source key).
    A blocked customer earns nothing (`customer_blocked`); a lot matching an open hold, or earned by a
    flagged customer, is created pending and held until the hold is reviewed.
    """
    program = membership.program
    status = Customer.objects.filter(pk=membership.customer_id).values_list("status", flat=True).first()
    if status == CustomerStatus.BLOCKED:
        raise DomainError("This customer is blocked and earns no points.", path="customer", code="customer_blocked")
    hold = _hold_for(membership, source_key, status or "", ledger.at)
    days = program.pending_days if pending_days is None else pending_days
    activates_at = ledger.at + timedelta(days=days)
    lot = PointLot.objects.create(
        membership=membership,
        amount=amount,
        remaining=amount,
        held=hold is not None,
        hold=hold,
        status=LotStatus.PENDING if days > 0 or hold is not None else LotStatus.ACTIVE,
        source_type=source_type,
        source_key=source_key,
        rule=rule,
        order=order,
        reason=reason[:255],
        actor=ledger.actor,
        cause=ledger.cause[:64],
        created_at=ledger.at,
        activates_at=activates_at,
        expires_at=expiry_for(program=program, tier=membership.tier, activates_at=activates_at),
    )
    ledger.move(lifetime_earned=amount)
    if lot.status == LotStatus.PENDING:
        ledger.entry(EntryKind.EARN, pending=amount, lot=lot, reason=reason)
    else:
        ledger.entry(EntryKind.EARN, active=amount, lot=lot, reason=reason)
        debt_settle(ledger, lot)
        lot.save(update_fields=["remaining", "status"])
    return lot


def debt_settle(ledger: MemberLedger, lot: PointLot) -> None:
    """New active points pay off a debt left by a refund first (so debt > 0 implies active == 0)."""
    settle = min(ledger.balance.debt, lot.remaining)
    if settle <= 0 or lot.status != LotStatus.ACTIVE:
        return
    lot.remaining -= settle
    if lot.remaining == 0:
        lot.status = LotStatus.SPENT
    ledger.entry(EntryKind.DEBT, active=-settle, debt=-settle, lot=lot, reason="Pays off earlier negative balance")


@transaction.atomic
def points_earn(
    *,
    membership: Membership,
    amount: int,
    source_type: str,
    source_key: str,
    reason: str = "",
    pending_days: int | None = None,
    actor: Any = None,
    cause: str = "",
    at: datetime | None = None,
) -> tuple[PointLot, bool]:
    """Earn `amount` points as one lot; a second call with the same `source_key` returns (lot, False)."""
    if amount <= 0:
        raise DomainError("Points must be positive.", path="points", code="invalid_points")
    at = at or timezone.now()
    existing = PointLot.objects.filter(source_key=source_key).first()
    if existing is not None:
        return existing, False
    balance = balance_lock(membership.pk)
    existing = PointLot.objects.filter(source_key=source_key).first()  # re-read under the lock
    if existing is not None:
        return existing, False
    membership = Membership.objects.select_related("program", "tier").get(pk=membership.pk)
    ledger = MemberLedger(balance=balance, at=at, actor=actor, cause=cause)
    try:
        with transaction.atomic():
            lot = lot_create(
                ledger,
                membership=membership,
                amount=amount,
                source_type=source_type,
                source_key=source_key,
                reason=reason,
                pending_days=pending_days,
            )
    except IntegrityError:
        return PointLot.objects.get(source_key=source_key), False
    Membership.objects.filter(pk=membership.pk).update(last_activity_at=at)
    ledger.flush()
    return lot, True


def points_award(
    *,
    membership: Membership,
    points: int,
    reason: str,
    source_type: str = SourceType.ADMIN,
    key: str | None = None,
    actor: Any = None,
    cause: str = "",
    at: datetime | None = None,
) -> tuple[PointLot, bool]:
    """A manual award (admin, API, workflow): active at once, reason required, audited."""
    if not reason.strip():
        raise DomainError("A reason is required.", path="reason", code="reason_required")
    source_key = f"{source_type}:{key}" if key else f"{source_type}:{uuid.uuid4().hex}"
    return points_earn(
        membership=membership,
        amount=points,
        source_type=source_type,
        source_key=source_key[:128],
        reason=reason,
        pending_days=0,
        actor=actor,
        cause=cause or source_type,
        at=at,
    )


@transaction.atomic
def points_award_reverse(*, source_key: str, reversed_target: int, reason: str, at: datetime | None = None) -> int:
    """
    Take back an award's points (a promotion's bonus points when its redemption is rolled back) until `reversed_target`
    of them are taken back in all — cumulative, so a repeated or partial call takes only the difference — per the
    program's return policy. Returns the points taken back now (0 when the policy keeps them, or no such lot).
    """
    membership_id = PointLot.objects.filter(source_key=source_key).values_list("membership_id", flat=True).first()
    if membership_id is None:
        return 0
    balance = balance_lock(membership_id)
    membership = Membership.objects.select_related("program").get(pk=membership_id)
    ledger = MemberLedger(balance=balance, at=at or timezone.now(), cause=source_key[:64])
    member_expire_due(ledger)
    lot = lots_lock(Q(source_key=source_key))[0]
    taken = lot_take_back(
        ledger,
        lot,
        min(reversed_target, lot.amount) - lot.reversed_amount,
        policy=membership.program.return_policy,
        reason=reason,
    )
    ledger.flush()
    return taken


@dataclass(frozen=True)
class AwardRequest:
    """One award of `points_award_many`: the member, the points, the reason and the idempotency key."""

    membership: Membership
    points: int
    reason: str
    key: str
    cause: str = ""


def points_award_many(
    *, awards: Sequence[AwardRequest], source_type: str = SourceType.WORKFLOW, at: datetime | None = None
) -> list[tuple[PointLot, bool, Balance]]:
    """
    `points_award` for many members at once (a batch of workflow runs), with the same lots, ledger entries,
    balances and `loyalty.points_changed` events: the balances locked in pk order (one query), the keys
    already awarded, the members' programs, statuses and open holds read once, then one insert for the lots,
    one for the entries, one update for the balances and one for the members' activity. A member with an
    open hold, or a flagged customer, is awarded through `points_award` (its lots may be held); a blocked
    customer, a bad amount or a missing reason refuses the whole call before anything is written.
    Returns, per award, (the lot, created?, the member's balance after the call). A member named twice gets
    both awards (different keys), in order. Call inside a transaction: no savepoint of its own.
    """
    for award in awards:
        if not award.reason.strip():
            raise DomainError("A reason is required.", path="reason", code="reason_required")
        if award.points <= 0:
            raise DomainError("Points must be positive.", path="points", code="invalid_points")
    at = at or timezone.now()
    with transaction.atomic(savepoint=False):
        return _points_award_many(awards, str(source_type), at)


def _points_award_many(
    awards: Sequence[AwardRequest], source_type: str, at: datetime
) -> list[tuple[PointLot, bool, Balance]]:
    keys = [f"{source_type}:{award.key}"[:128] for award in awards]
    member_ids = sorted({award.membership.pk for award in awards})
    balances = balances_lock(member_ids)
    existing = {lot.source_key: lot for lot in PointLot.objects.filter(source_key__in=keys)}  # under the locks
    members = {
        member.pk: member
        for member in Membership.objects.filter(pk__in=member_ids).select_related("program", "tier", "customer")
    }
    statuses = {member.pk: member.customer.status for member in members.values()}
    if CustomerStatus.BLOCKED in statuses.values():
        raise DomainError("This customer is blocked and earns no points.", path="customer", code="customer_blocked")
    held = set(
        PointHold.objects.filter(membership_id__in=member_ids, status=HoldStatus.OPEN).values_list(
            "membership_id", flat=True
        )
    )
    ledgers = {pk: MemberLedger(balance=balance, at=at) for pk, balance in balances.items()}
    results: list[tuple[PointLot, bool] | None] = []
    lots: list[PointLot] = []
    one_by_one: list[int] = []
    for index, (award, key) in enumerate(zip(awards, keys, strict=True)):
        pk = award.membership.pk
        if key in existing:
            results.append((existing[key], False))
            continue
        if pk in held or statuses[pk] == CustomerStatus.FLAGGED:
            results.append(None)
            one_by_one.append(index)
            continue
        member = members[pk]
        lot = PointLot(
            membership=member,
            amount=award.points,
            remaining=award.points,
            status=LotStatus.ACTIVE,
            source_type=source_type,
            source_key=key,
            reason=award.reason[:255],
            cause=(award.cause or source_type)[:64],
            created_at=at,
            activates_at=at,
            expires_at=expiry_for(program=member.program, tier=member.tier, activates_at=at),
        )
        existing[key] = lot  # the same key twice in one call: awarded once
        lots.append(lot)
        results.append((lot, True))
    lots_write_many(lots, ledgers, at=at)
    for index in one_by_one:
        award = awards[index]
        results[index] = points_award(
            membership=award.membership,
            points=award.points,
            reason=award.reason,
            source_type=source_type,
            key=award.key,
            cause=award.cause,
            at=at,
        )
        balances[award.membership.pk].refresh_from_db()
    return [(*result, balances[award.membership.pk]) for result, award in zip(results, awards, strict=True) if result]


def lot_build(ledger: MemberLedger, *, membership: Membership, amount: int, **fields: Any) -> PointLot:
    """
    A lot as `lot_create` writes it, built in memory for `lots_write_many` (no hold: the caller sends a member with
    an open hold, or a flagged customer, through `lot_create`): pending for the program's pending days, else active.
    """
    days = membership.program.pending_days
    activates_at = ledger.at + timedelta(days=days)
    reason = str(fields.pop("reason", ""))[:255]
    return PointLot(
        membership=membership,
        amount=amount,
        remaining=amount,
        status=LotStatus.PENDING if days > 0 else LotStatus.ACTIVE,
        reason=reason,
        actor=ledger.actor,
        cause=ledger.cause[:64],
        created_at=ledger.at,
        activates_at=activates_at,
        expires_at=expiry_for(program=membership.program, tier=membership.tier, activates_at=activates_at),
        **fields,
    )


def lots_write_many(
    lots: Sequence[PointLot], ledgers: dict[int, MemberLedger], *, at: datetime, every_member: bool = False
) -> list[MemberLedger]:
    """
    Write lots built in memory (their members' Balance rows locked, one `MemberLedger` each in `ledgers`) with what
    `lot_create` + `MemberLedger.flush` write one by one: one insert for the lots, their earn entries (pending or
    active; active points pay a debt first, one update of the lots that paid), one insert for the entries, one update
    of the balances (expiring soon recomputed), one of the members' activity, and their `loyalty.points_changed`
    events set-based. `every_member`: every ledger's balance and activity are written, moved or not (as the
    per-order path touches them); else only the members that moved. Returns the ledgers that moved.
    Call inside a transaction: no savepoint of its own.
    """
    PointLot.objects.bulk_create(lots)
    for lot in lots:
        ledger = ledgers[lot.membership_id]
        ledger.cause = lot.cause
        ledger.move(lifetime_earned=lot.amount)
        if lot.status == LotStatus.PENDING:
            ledger.entry(EntryKind.EARN, pending=lot.amount, lot=lot, reason=lot.reason)
        else:
            ledger.entry(EntryKind.EARN, active=lot.amount, lot=lot, reason=lot.reason)
            debt_settle(ledger, lot)
    rows_update(PointLot, [lot for lot in lots if lot.remaining != lot.amount], ["remaining", "status"])
    moved = [ledger for ledger in ledgers.values() if ledger.entries]
    LedgerEntry.objects.bulk_create([entry for ledger in moved for entry in ledger.entries])
    written = list(ledgers.values()) if every_member else moved
    if written:
        _expiring_soon_many([ledger.balance for ledger in written], at)
        for ledger in written:
            ledger.balance.updated_at = at
        rows_update(
            Balance,
            [ledger.balance for ledger in written],
            ["active", "pending", "debt", "lifetime_earned", "expiring_soon", "updated_at"],
        )
        Membership.objects.filter(pk__in=[ledger.balance.membership_id for ledger in written]).update(
            last_activity_at=at
        )
        # One set-based insert of the members' `loyalty.points_changed` events when someone listens, handed to
        # the consumers after commit (`points_moved_emit_bulk`, as the batch jobs announce theirs).
        points_moved_emit_bulk(moved)
    for ledger in moved:
        ledger.entries, ledger.allocations = [], []
        ledger.deltas = dict.fromkeys(ledger.deltas, 0)
    return moved


def _expiring_soon_many(balances: list[Balance], at: datetime) -> None:
    """`_expiring_soon` for many members in one query (each member's program's notice)."""
    rows = (
        PointLot.objects.filter(
            membership_id__in=[balance.membership_id for balance in balances],
            status=LotStatus.ACTIVE,
            remaining__gt=0,
            expires_at__gt=at,
        )
        .values("membership_id", "expires_at", "membership__program__expiry_notice_days")
        .annotate(total=Sum("remaining"))
    )
    totals: dict[int, int] = {}
    for row in rows:  # one row per member and expiry date
        expires_at = row["expires_at"]
        if expires_at is not None and expires_at <= at + timedelta(
            days=row["membership__program__expiry_notice_days"] or 0
        ):
            totals[row["membership_id"]] = totals.get(row["membership_id"], 0) + row["total"]
    for balance in balances:
        balance.expiring_soon = totals.get(balance.membership_id, 0)


def member_expire_due(ledger: MemberLedger) -> None:
    """Expire this member's lots that are past due before spending, so expired points are never spent."""
    lots = lots_lock(Q(membership_id=ledger.balance.membership_id, status=LotStatus.ACTIVE, expires_at__lte=ledger.at))
    for lot in lots:
        lot_expire(ledger, lot)
    if lots:
        PointLot.objects.bulk_update(lots, ["remaining", "status"])


def lot_expire(ledger: MemberLedger, lot: PointLot) -> None:
    if lot.remaining:
        ledger.entry(EntryKind.EXPIRE, active=-lot.remaining, lot=lot, reason="Points expired")
        ledger.move(lifetime_expired=lot.remaining)
    lot.remaining = 0
    lot.status = LotStatus.EXPIRED


def allocate_fefo(ledger: MemberLedger, entry: LedgerEntry, points: int, *, exclude_lot: int | None = None) -> None:
    """Draw `points` from active lots, soonest-expiring first, recording one allocation per lot."""
    lots = lots_lock(Q(membership_id=ledger.balance.membership_id, status=LotStatus.ACTIVE, remaining__gt=0))
    lots.sort(key=fefo_key)
    left = points
    touched = []
    for lot in lots:
        if left == 0:
            break
        if lot.pk == exclude_lot:
            continue
        take = min(lot.remaining, left)
        lot.remaining -= take
        if lot.remaining == 0:
            lot.status = LotStatus.SPENT
        left -= take
        ledger.allocate(entry, lot, take)
        touched.append(lot)
    if left:
        raise DomainError("Not enough points.", path="points", code="insufficient_points")
    PointLot.objects.bulk_update(touched, ["remaining", "status"])


def spend(
    ledger: MemberLedger, *, points: int, reason: str, redemption: Any = None, key: str | None = None
) -> LedgerEntry:
    """Spend inside a locked ledger (the caller holds the Balance lock)."""
    if points <= 0:
        raise DomainError("Points must be positive.", path="points", code="invalid_points")
    member_expire_due(ledger)
    if points > ledger.balance.active:
        raise DomainError(
            f"Not enough points: {ledger.balance.active} available, {points} needed.",
            path="points",
            code="insufficient_points",
        )
    entry = ledger.entry(EntryKind.SPEND, active=-points, redemption=redemption, reason=reason, idempotency_key=key)
    ledger.move(lifetime_spent=points)
    allocate_fefo(ledger, entry, points)
    return entry


@transaction.atomic
def points_deduct(
    *,
    membership: Membership,
    points: int,
    reason: str,
    key: str | None = None,
    actor: Any = None,
    cause: str = "",
    at: datetime | None = None,
) -> LedgerEntry:
    """Take points off the balance (admin/API/workflow), FEFO, audited; never below zero."""
    if not reason.strip():
        raise DomainError("A reason is required.", path="reason", code="reason_required")
    if key:
        existing = LedgerEntry.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
    balance = balance_lock(membership.pk)
    if key and (existing := LedgerEntry.objects.filter(idempotency_key=key).first()) is not None:
        return existing
    ledger = MemberLedger(balance=balance, at=at or timezone.now(), actor=actor, cause=cause)
    entry = spend(ledger, points=points, reason=reason, key=key)
    ledger.flush()
    return entry


def spend_reverse(ledger: MemberLedger, entry: LedgerEntry, *, reason: str, redemption: Any = None) -> int:
    """Return every point of a spend to the lot it came from; points whose lot has expired expire again."""
    allocations = list(
        PointAllocation.objects.filter(entry=entry, returned__lt=F("amount")).order_by("pk").select_for_update()
    )
    lots = {lot.pk: lot for lot in lots_lock(Q(pk__in=[a.lot_id for a in allocations]))}
    total = 0
    for allocation in allocations:
        lot = lots[allocation.lot_id]
        give = allocation.amount - allocation.returned
        allocation.returned = allocation.amount
        lot.remaining += give
        total += give
        ledger.entry(EntryKind.ROLLBACK, active=give, lot=lot, redemption=redemption, reason=reason)
        if lot.expires_at is not None and lot.expires_at <= ledger.at:
            lot_expire(ledger, lot)
        else:
            lot.status = LotStatus.ACTIVE
            debt_settle(ledger, lot)
    ledger.move(lifetime_spent=-total)
    PointAllocation.objects.bulk_update(allocations, ["returned"])
    PointLot.objects.bulk_update(list(lots.values()), ["remaining", "status"])
    return total


def lot_take_back(ledger: MemberLedger, lot: PointLot, points: int, *, policy: str, reason: str) -> int:
    """
    Take back `points` earned by `lot` (refund/cancel), per the program's return policy. Returns the
    points actually recorded as taken back (what the lot's `reversed_amount` grows by).
    """
    if points <= 0:
        return 0
    if policy == ReturnPolicy.PENDING_ONLY and lot.status != LotStatus.PENDING:
        return 0
    from_lot = min(points, lot.remaining)
    if from_lot:
        lot.remaining -= from_lot
        if lot.status == LotStatus.PENDING:
            ledger.entry(EntryKind.REVERSE, pending=-from_lot, lot=lot, reason=reason)
            if lot.remaining == 0:
                lot.status = LotStatus.CANCELLED
        else:
            ledger.entry(EntryKind.REVERSE, active=-from_lot, lot=lot, reason=reason)
            if lot.remaining == 0:
                lot.status = LotStatus.SPENT
    leftover = points - from_lot
    if leftover and policy in (ReturnPolicy.FROM_BALANCE, ReturnPolicy.ALLOW_NEGATIVE):
        lot.save(update_fields=["remaining", "status"])
        take = min(leftover, ledger.balance.active)
        if take:
            entry = ledger.entry(EntryKind.REVERSE, active=-take, lot=lot, reason=f"{reason} (from other points)")
            allocate_fefo(ledger, entry, take, exclude_lot=lot.pk)
            lot.refresh_from_db(fields=["remaining", "status"])
        leftover -= take
        if leftover and policy == ReturnPolicy.ALLOW_NEGATIVE:
            ledger.entry(EntryKind.DEBT, debt=leftover, lot=lot, reason=f"{reason} (negative balance)")
    lot.reversed_amount += points
    ledger.move(lifetime_earned=-points)
    lot.save(update_fields=["remaining", "status", "reversed_amount"])
    lot_limits_give_back(lot, points)  # (the points taken back free their room under the rule's limits)
    return points


# --- holds for review (fraud) ----------------------------------------------------------------------------


@transaction.atomic
def points_hold(
    *,
    membership: Membership,
    source_prefix: str,
    reason: str,
    cause: str = "",
    at: datetime | None = None,
) -> PointHold:
    """
    Hold a member's points for review: the lots whose source key starts with `source_prefix` (every new lot
    when it is empty). Active points of those lots move back to pending; lots created later join the hold.
    Idempotent per open (member, prefix).
    """
    at = at or timezone.now()
    balance = balance_lock(membership.pk)
    hold = PointHold.objects.filter(membership=membership, source_prefix=source_prefix, status=HoldStatus.OPEN).first()
    if hold is None:
        hold = PointHold.objects.create(
            membership=membership,
            source_prefix=source_prefix[:128],
            reason=reason[:255],
            cause=cause[:64],
            created_at=at,
        )
    if not source_prefix:
        return hold
    lots = lots_lock(
        Q(membership_id=membership.pk, source_key__startswith=source_prefix, held=False, remaining__gt=0)
        & Q(status__in=[LotStatus.ACTIVE, LotStatus.PENDING])
    )
    ledger = MemberLedger(balance=balance, at=at, cause=cause or f"hold:{hold.pk}")
    for lot in lots:
        if lot.status == LotStatus.ACTIVE:
            ledger.entry(
                EntryKind.HOLD, active=-lot.remaining, pending=lot.remaining, lot=lot, reason=f"Held: {reason}"
            )
            lot.status = LotStatus.PENDING
        lot.held = True
        lot.hold = hold
    PointLot.objects.bulk_update(lots, ["status", "held", "hold"])
    ledger.flush()
    return hold


def _hold_lock(hold: PointHold) -> tuple[MemberLedger | None, PointHold, list[PointLot]]:
    balance = balance_lock(hold.membership_id)
    hold = PointHold.objects.select_for_update().get(pk=hold.pk)
    if hold.status != HoldStatus.OPEN:
        return None, hold, []
    lots = lots_lock(Q(hold=hold, held=True))
    return MemberLedger(balance=balance, at=timezone.now(), cause=f"hold:{hold.pk}"), hold, lots


@transaction.atomic
def points_hold_release(*, hold: PointHold, user: Any = None, at: datetime | None = None) -> PointHold:
    """Approve a hold: its lots activate (or wait out their normal pending time). A second call changes nothing."""
    ledger, hold, lots = _hold_lock(hold)
    if ledger is None:
        return hold
    ledger.at = at or ledger.at
    ledger.actor = user if getattr(user, "is_authenticated", False) else None
    for lot in lots:
        lot.held = False
        if lot.status != LotStatus.PENDING or lot.activates_at > ledger.at:
            continue
        if lot.remaining == 0:
            lot.status = LotStatus.CANCELLED
            continue
        lot.status = LotStatus.ACTIVE
        ledger.entry(
            EntryKind.ACTIVATE, active=lot.remaining, pending=-lot.remaining, lot=lot, reason="Approved after review"
        )
        debt_settle(ledger, lot)
        if lot.expires_at is not None and lot.expires_at <= ledger.at:
            lot_expire(ledger, lot)
    PointLot.objects.bulk_update(lots, ["status", "held", "remaining"])
    _hold_close(hold, HoldStatus.RELEASED, ledger)
    return hold


@transaction.atomic
def points_hold_reject(*, hold: PointHold, user: Any = None, at: datetime | None = None) -> PointHold:
    """Reject a hold: every held point is reversed (pending - n, lifetime earned - n); the lots are cancelled."""
    ledger, hold, lots = _hold_lock(hold)
    if ledger is None:
        return hold
    ledger.at = at or ledger.at
    ledger.actor = user if getattr(user, "is_authenticated", False) else None
    for lot in lots:
        lot.held = False
        if lot.remaining:
            ledger.entry(EntryKind.REVERSE, pending=-lot.remaining, lot=lot, reason="Rejected after review")
            ledger.move(lifetime_earned=-lot.remaining)
            lot.reversed_amount += lot.remaining
            lot_limits_give_back(lot, lot.remaining)
            lot.remaining = 0
        lot.status = LotStatus.CANCELLED
    PointLot.objects.bulk_update(lots, ["status", "held", "remaining", "reversed_amount"])
    _hold_close(hold, HoldStatus.REJECTED, ledger)
    return hold


def _hold_close(hold: PointHold, status: str, ledger: MemberLedger) -> None:
    hold.status = status
    hold.resolved_at = ledger.at
    hold.resolved_by = ledger.actor
    hold.save(update_fields=["status", "resolved_at", "resolved_by"])
    ledger.flush()
