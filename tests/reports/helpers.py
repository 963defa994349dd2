"""Small hand-made data for the reports tests: members, orders through the services, ledger rows as stored."""

from datetime import UTC, datetime
from decimal import Decimal

from apps.customers import services as customer_services
from apps.customers.models import Customer, Order
from apps.customers.services import LineInput
from apps.loyalty.models import LedgerEntry, Membership, Program

from ..factories import CustomerFactory


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def customer(created: str = "2026-03-01") -> Customer:
    return CustomerFactory(created_at=at(created, 8))


def member(program: Program, who: Customer, joined: str) -> Membership:
    return Membership.objects.create(program=program, customer=who, joined_at=at(joined, 9))


def order(who: Customer, total: str, placed: str, *, currency: str = "USD", total_shop: str | None = None) -> Order:
    created, _ = customer_services.order_create(
        customer=who,
        currency=currency,
        lines=[LineInput(title="Item", quantity=1, unit_price=Decimal(total))],
        total=Decimal(total),
        total_shop=total_shop,
        placed_at=at(placed),
    )
    return created


def entry(membership: Membership, kind: str, day: str, *, active: int = 0, pending: int = 0) -> LedgerEntry:
    return LedgerEntry.objects.create(
        membership=membership,
        kind=kind,
        active_delta=active,
        pending_delta=pending,
        active_after=0,
        created_at=at(day),
    )
