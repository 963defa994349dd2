"""
The loyalty fields of the condition language (imported by LoyaltyConfig.ready): how each is read in
memory for one event and compiled to SQL over Customer rows for audiences.
"""

from datetime import timedelta
from typing import Any

from django.db.models import F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from loyalty_site.lib.conditions.catalog import FieldSpec, register_field

from .choices import LotStatus
from .models import Balance, Membership, PointLot

# --- Readers shared by fields and actions -------------------------------------------------------------


def membership_of_customer(customer: Any) -> Membership | None:
    from .services import membership_for

    if customer is None or getattr(customer, "pk", None) is None:
        return None
    return membership_for(customer)


def _context_membership(context: Any) -> Membership | None:
    """The customer's membership, read once per evaluation (the engine's context cache, else `extra`)."""
    extra = getattr(context, "extra", None)
    if isinstance(extra, dict) and extra.get("loyalty_membership") is not None:
        return extra["loyalty_membership"]
    customer = getattr(context, "customer", None)
    if hasattr(context, "cached"):
        return context.cached(
            ("loyalty.membership", getattr(customer, "pk", None)), lambda: membership_of_customer(customer)
        )
    return membership_of_customer(customer)


def _balance(context: Any) -> Balance | None:
    membership = _context_membership(context)
    return Balance.objects.filter(pk=membership.pk).first() if membership else None


def read_balance(context: Any, *args: Any, **kwargs: Any) -> int:
    balance = _balance(context)
    return balance.available if balance else 0


def read_pending(context: Any, *args: Any, **kwargs: Any) -> int:
    balance = _balance(context)
    return balance.pending if balance else 0


def read_lifetime(context: Any, *args: Any, **kwargs: Any) -> int:
    balance = _balance(context)
    return balance.lifetime_earned if balance else 0


def read_tier(context: Any, *args: Any, **kwargs: Any) -> str:
    membership = _context_membership(context)
    return membership.tier.name if membership and membership.tier else ""


def _window_days(args: tuple, kwargs: dict, default: int = 30) -> int:
    window = kwargs.get("window") or (args[0] if args else None)
    if isinstance(window, dict) and window.get("days") is not None:
        return int(window["days"])
    return default


def read_points_expiring(context: Any, *args: Any, **kwargs: Any) -> int:
    """Active points expiring within the window's days (default 30) from the evaluation time."""
    membership = _context_membership(context)
    if membership is None:
        return 0
    now = getattr(context, "now", None) or timezone.now()
    horizon = now + timedelta(days=_window_days(args, kwargs))
    total = PointLot.objects.filter(
        membership=membership, status=LotStatus.ACTIVE, remaining__gt=0, expires_at__gt=now, expires_at__lte=horizon
    ).aggregate(total=Sum("remaining"))["total"]
    return total or 0


def read_weekday(context: Any, *args: Any, **kwargs: Any) -> int:
    """ISO weekday (1 = Monday) of the evaluation time, in the site's time zone: 'double points on Mondays'."""
    now = getattr(context, "now", None) or timezone.now()
    return timezone.localtime(now).isoweekday()


# SQL versions over Customer rows (value expressions; the catalog applies the operator).
def _balance_column(column: str) -> Coalesce:
    rows = Balance.objects.filter(membership__customer_id=OuterRef("pk"), membership__program__is_active=True)
    return Coalesce(Subquery(rows.order_by("membership__program_id").values(column)[:1]), Value(0))


def compile_balance(*args: Any, **kwargs: Any) -> Any:
    rows = Balance.objects.filter(membership__customer_id=OuterRef("pk"), membership__program__is_active=True)
    # (`available` would shadow the Balance.available property)
    available = rows.order_by("membership__program_id").annotate(available_points=F("active") - F("debt"))
    return Coalesce(Subquery(available.values("available_points")[:1], output_field=IntegerField()), Value(0))


def compile_pending(*args: Any, **kwargs: Any) -> Any:
    return _balance_column("pending")


def compile_lifetime(*args: Any, **kwargs: Any) -> Any:
    return _balance_column("lifetime_earned")


def compile_tier(*args: Any, **kwargs: Any) -> Any:
    rows = Membership.objects.filter(customer_id=OuterRef("pk"), program__is_active=True).order_by("program_id")
    return Coalesce(Subquery(rows.values("tier__name")[:1]), Value(""))


def compile_points_expiring(*args: Any, now: Any = None, **kwargs: Any) -> Any:
    now = now or timezone.now()
    horizon = now + timedelta(days=_window_days(args, kwargs))
    rows = (
        PointLot.objects.filter(
            membership__customer_id=OuterRef("pk"),
            status=LotStatus.ACTIVE,
            remaining__gt=0,
            expires_at__gt=now,
            expires_at__lte=horizon,
        )
        .values("membership__customer_id")
        .annotate(total=Sum("remaining"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


# The outbox events that can change each field for a customer (state tags re-evaluate on exactly these): every
# ledger write emits `loyalty.points_changed` (services/ledger.py), a tier move `loyalty.tier_changed`; joining
# sets the entry tier without a tier event (a new member's balance is 0, as a non-member's reads).
POINTS_EVENTS = ("loyalty.points_changed",)
TIER_EVENTS = ("loyalty.tier_changed", "member.joined")

FIELDS: list[FieldSpec] = [
    FieldSpec(
        scope="customer",
        name="loyalty.balance",
        type="integer",
        label="Points balance",
        description="Points the customer can spend now (active minus any debt).",
        read=read_balance,
        changed_by=POINTS_EVENTS,
        compile=compile_balance,
        example=1200,
    ),
    FieldSpec(
        scope="customer",
        name="loyalty.pending",
        type="integer",
        label="Pending points",
        description="Points earned but not active yet.",
        read=read_pending,
        changed_by=POINTS_EVENTS,
        compile=compile_pending,
        example=80,
    ),
    FieldSpec(
        scope="customer",
        name="loyalty.tier",
        type="text",
        label="Loyalty tier",
        description="Name of the customer's current tier (empty when not a member).",
        read=read_tier,
        changed_by=TIER_EVENTS,
        compile=compile_tier,
        example="Gold",
    ),
    FieldSpec(
        scope="customer",
        name="loyalty.lifetime_points",
        type="integer",
        label="Lifetime points earned",
        description="Every point ever earned, minus points taken back by refunds.",
        read=read_lifetime,
        changed_by=POINTS_EVENTS,
        compile=compile_lifetime,
        example=5400,
    ),
    FieldSpec(
        scope="customer",
        name="loyalty.points_expiring",
        type="integer",
        label="Points expiring within N days",
        description="Active points that expire within the window (default 30 days).",
        read=read_points_expiring,
        changed_by=POINTS_EVENTS,
        compile=compile_points_expiring,
        supports_window=True,
        example=150,
    ),
    FieldSpec(
        scope="customer",
        name="loyalty.weekday",
        type="integer",
        label="Day of the week (1 = Monday)",
        description="ISO weekday of the moment the condition is evaluated, for time-boxed bonuses.",
        read=read_weekday,
        example=1,
    ),
]

for _spec in FIELDS:
    register_field(_spec)
