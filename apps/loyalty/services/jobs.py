"""
Periodic ledger jobs: activate pending points, expire points, announce points about to expire, expire
unused codes. Each selects due rows in SQL, works in batches of members with their Balance rows locked
in pk order, writes with bulk statements, and is idempotent (a second run finds nothing due).
"""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import IntegerField, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.customers.outbox import domain_event_emit

from .. import signals
from ..choices import EntryKind, ExpiryPolicy, LotStatus, RedemptionStatus
from ..models import Balance, LedgerEntry, Membership, PointLot, Program, Redemption
from .ledger import MemberLedger, balances_lock, debt_settle, lot_expire, lots_lock, points_moved_emit_bulk

BATCH = 500

COUNTERS = ["active", "pending", "debt", "lifetime_earned", "lifetime_spent", "lifetime_expired", "updated_at"]


def _batch_write(ledgers: list[MemberLedger], lots: list[PointLot]) -> None:
    LedgerEntry.objects.bulk_create([entry for ledger in ledgers for entry in ledger.entries])
    PointLot.objects.bulk_update(lots, ["remaining", "status"])
    # The rows are locked, so writing the values computed under the lock is exact (one statement per batch).
    Balance.objects.bulk_update([ledger.balance for ledger in ledgers], COUNTERS)
    points_moved_emit_bulk(ledgers)


def points_activate_due(*, at: datetime | None = None, batch: int = BATCH) -> int:
    """Turn pending lots whose time has come into active points. Returns the number of lots activated."""
    at = at or timezone.now()
    done = 0
    while True:
        member_ids = list(
            PointLot.objects.filter(status=LotStatus.PENDING, activates_at__lte=at, held=False)
            .order_by("membership_id")
            .values_list("membership_id", flat=True)
            .distinct()[:batch]
        )
        if not member_ids:
            return done
        with transaction.atomic():
            balances = balances_lock(member_ids)
            lots = lots_lock(
                Q(membership_id__in=member_ids, status=LotStatus.PENDING, activates_at__lte=at, held=False)
            )
            ledgers = {pk: MemberLedger(balance=balance, at=at, cause="activation") for pk, balance in balances.items()}
            for lot in lots:
                ledger = ledgers[lot.membership_id]
                ledger.balance.updated_at = at
                if lot.remaining == 0:
                    lot.status = LotStatus.CANCELLED
                    continue
                lot.status = LotStatus.ACTIVE
                ledger.entry(
                    EntryKind.ACTIVATE, active=lot.remaining, pending=-lot.remaining, lot=lot, reason="Points activated"
                )
                debt_settle(ledger, lot)
                if lot.expires_at is not None and lot.expires_at <= at:
                    lot_expire(ledger, lot)
            _batch_write(list(ledgers.values()), lots)
            done += len(lots)


def points_expire_due(*, at: datetime | None = None, batch: int = BATCH) -> int:
    """
    Expire active points past their expiry date, and every active point of members inactive for longer
    than their program's inactivity period. Also marks issued codes past their validity as expired.
    Returns the number of lots expired.
    """
    at = at or timezone.now()
    inactivity = Q(pk__in=[])
    for program in Program.objects.filter(expiry_policy=ExpiryPolicy.INACTIVITY):
        cutoff = at - timedelta(days=program.expiry_days)
        inactivity |= Q(membership__program=program, membership__last_activity_at__lte=cutoff)
    due = Q(status=LotStatus.ACTIVE, remaining__gt=0) & (Q(expires_at__lte=at) | inactivity)
    done = 0
    while True:
        member_ids = list(
            PointLot.objects.filter(due)
            .order_by("membership_id")
            .values_list("membership_id", flat=True)
            .distinct()[:batch]
        )
        if not member_ids:
            break
        with transaction.atomic():
            balances = balances_lock(member_ids)
            lots = list(PointLot.objects.filter(due, membership_id__in=member_ids).order_by("pk").select_for_update())
            ledgers = {pk: MemberLedger(balance=balance, at=at, cause="expiry") for pk, balance in balances.items()}
            for lot in lots:
                ledgers[lot.membership_id].balance.updated_at = at
                lot_expire(ledgers[lot.membership_id], lot)
            _batch_write(list(ledgers.values()), lots)
            done += len(lots)
    Redemption.objects.filter(status=RedemptionStatus.ISSUED, expires_at__lte=at).update(
        status=RedemptionStatus.EXPIRED
    )
    return done


def points_expiring_notify(*, at: datetime | None = None) -> int:
    """
    Send `loyalty.points_expiring` once per member for lots expiring within the program's notice period
    (each lot announced once), and refresh every balance's `expiring_soon`. Returns events sent.
    """
    at = at or timezone.now()
    sent = 0
    for program in Program.objects.filter(is_active=True):
        horizon = at + timedelta(days=program.expiry_notice_days)
        window = Q(
            membership__program=program,
            status=LotStatus.ACTIVE,
            remaining__gt=0,
            expires_at__gt=at,
            expires_at__lte=horizon,
        )
        with transaction.atomic():
            lots = list(
                PointLot.objects.filter(window, expiry_notified_at__isnull=True).order_by("pk").select_for_update()
            )
            per_member: dict[int, list[PointLot]] = defaultdict(list)
            for lot in lots:
                per_member[lot.membership_id].append(lot)
            memberships = Membership.objects.select_related("customer").in_bulk(list(per_member))
            for membership_id, member_lots in per_member.items():
                membership = memberships[membership_id]
                points = sum(lot.remaining for lot in member_lots)
                # (`window` only holds lots with an expiry date)
                first_expiry = min(lot.expires_at for lot in member_lots if lot.expires_at is not None)
                domain_event_emit(
                    signal=signals.points_expiring,
                    name="loyalty.points_expiring",
                    customer=membership.customer,
                    payload={
                        "membership_id": membership_id,
                        "points": points,
                        "expires_at": first_expiry.isoformat(),
                        "lot_ids": [lot.pk for lot in member_lots],
                    },
                    cause="expiry_notice",
                    sender=Membership,
                    membership=membership,
                    points=points,
                    expires_at=first_expiry,
                )
                sent += 1
            PointLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(expiry_notified_at=at)
        # Refreshed after the lots' transaction, in chunks whose Balance rows are locked in pk order, so this
        # never holds lot locks while waiting for a balance (the order every other writer uses is the reverse).
        soon = (
            PointLot.objects.filter(window, membership_id=OuterRef("pk"))
            .values("membership_id")
            .annotate(total=Sum("remaining"))
            .values("total")
        )
        member_ids = list(
            Balance.objects.filter(membership__program=program).order_by("pk").values_list("pk", flat=True)
        )
        for index in range(0, len(member_ids), BATCH * 2):
            with transaction.atomic():
                chunk = list(
                    Balance.objects.filter(pk__in=member_ids[index : index + BATCH * 2])
                    .order_by("pk")
                    .select_for_update()
                    .values_list("pk", flat=True)
                )
                Balance.objects.filter(pk__in=chunk).update(
                    expiring_soon=Coalesce(Subquery(soon, output_field=IntegerField()), 0)
                )
    return sent


def next_expiry(membership_id: int, at: datetime) -> datetime | None:
    return PointLot.objects.filter(
        membership_id=membership_id, status=LotStatus.ACTIVE, remaining__gt=0, expires_at__gt=at
    ).aggregate(first=Min("expires_at"))["first"]
