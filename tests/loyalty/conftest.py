from decimal import Decimal

import pytest
from django.db.models import Sum

from apps.loyalty.choices import LotStatus
from apps.loyalty.models import Balance, LedgerEntry, Membership, PointLot, Program


def program_make(**fields) -> Program:
    defaults = {
        "name": "Club",
        "slug": "club",
        "currency": "USD",
        "points_per_unit": Decimal("1"),
        "pending_days": 0,
        "expiry_policy": "never",
        "expiry_notice_days": 3,
    }
    defaults.update(fields)
    return Program.objects.create(**defaults)


@pytest.fixture
def program(db) -> Program:
    return program_make()


def assert_ledger_consistent(membership: Membership) -> Balance:
    """The balance row equals the sum of ledger entries and of the lots' remaining points."""
    balance = Balance.objects.get(pk=membership.pk)
    sums = LedgerEntry.objects.filter(membership=membership).aggregate(
        active=Sum("active_delta"), pending=Sum("pending_delta"), debt=Sum("debt_delta")
    )
    lots = PointLot.objects.filter(membership=membership)
    active_lots = lots.filter(status__in=[LotStatus.ACTIVE, LotStatus.SPENT]).aggregate(s=Sum("remaining"))["s"] or 0
    pending_lots = lots.filter(status=LotStatus.PENDING).aggregate(s=Sum("remaining"))["s"] or 0
    assert (balance.active, balance.pending, balance.debt) == (
        sums["active"] or 0,
        sums["pending"] or 0,
        sums["debt"] or 0,
    )
    assert (balance.active, balance.pending) == (active_lots, pending_lots)
    assert lots.filter(status__in=[LotStatus.EXPIRED, LotStatus.CANCELLED], remaining__gt=0).count() == 0
    return balance
