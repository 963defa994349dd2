"""
The fraud fields of the condition language (imported by CampaignsConfig.ready): velocity figures over the
last N minutes / hours / days — each one indexed query — and identity checks (disposable e-mail domain,
a referral from the referrer's own IP or device). Read in memory for the event a fraud rule evaluates.
"""

from datetime import timedelta
from typing import Any

from disposable_email_domains import blocklist
from django.db.models import Sum

from apps.customers.models import Customer, Order
from apps.loyalty.models import PointLot, Referral
from apps.loyalty.models import Redemption as RewardRedemption
from loyalty_site.lib.conditions.catalog import FieldSpec, register_field
from loyalty_site.lib.identity import email_domain

from ..promotions.choices import RedemptionStatus
from ..promotions.models import Redemption as PromotionRedemption

VELOCITY_UNITS = ("minutes", "hours", "days")
DEFAULT_WINDOW = timedelta(hours=1)


def window_delta(window: Any) -> timedelta:
    """`{"minutes": 30}` / `{"hours": 1}` / `{"days": 2}` as a timedelta (one hour when absent)."""
    if isinstance(window, dict) and len(window) == 1:
        unit, amount = next(iter(window.items()))
        if unit in VELOCITY_UNITS and isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
            return timedelta(**{unit: amount})
    return DEFAULT_WINDOW


def _since(context: Any, window: Any) -> Any:
    return context.now - window_delta(window)


def _customer(context: Any) -> Customer | None:
    customer = getattr(context, "customer", None)
    return customer if customer is not None and getattr(customer, "pk", None) is not None else None


def _referral(context: Any) -> Referral | None:
    extra = getattr(context, "extra", None)
    return extra.get("referral") if isinstance(extra, dict) else None


def _velocity(name: str, count: Any) -> Any:
    """A reader counting rows in the window, cached per evaluation."""

    def read(context: Any, window: Any = None, **kwargs: Any) -> int:
        customer = _customer(context)
        if customer is None:
            return 0
        since = _since(context, window)
        key = (name, customer.pk, since)
        return context.cached(key, lambda: count(customer, since, context) or 0)

    return read


def _points_earned(customer: Customer, since: Any, context: Any) -> int:
    rows = PointLot.objects.filter(membership__customer_id=customer.pk, created_at__gte=since)
    return rows.aggregate(total=Sum("amount"))["total"] or 0


def _orders(customer: Customer, since: Any, context: Any) -> int:
    return Order.objects.filter(customer_id=customer.pk, placed_at__gte=since).count()


def _rewards_redeemed(customer: Customer, since: Any, context: Any) -> int:
    return RewardRedemption.objects.filter(membership__customer_id=customer.pk, issued_at__gte=since).count()


def _codes_redeemed(customer: Customer, since: Any, context: Any) -> int:
    return PromotionRedemption.objects.filter(
        customer_id=customer.pk, status=RedemptionStatus.REDEEMED, redeemed_at__gte=since
    ).count()


def _redemption(context: Any) -> PromotionRedemption | None:
    extra = getattr(context, "extra", None)
    return extra.get("redemption") if isinstance(extra, dict) else None


def _codes_redeemed_same_ip(customer: Customer, since: Any, context: Any) -> int:
    redemption = _redemption(context)
    ip = (redemption.ip if redemption is not None else None) or customer.signup_ip
    if not ip:
        return 0
    return PromotionRedemption.objects.filter(
        ip=ip, status=RedemptionStatus.REDEEMED, redeemed_at__gte=since
    ).count()  # promo_redemption_ip_idx (ip, redeemed_at)


def _referrals(customer: Customer, since: Any, context: Any) -> int:
    return Referral.objects.filter(referrer__customer_id=customer.pk, created_at__gte=since).count()


def _signups_by(column: str) -> Any:
    def count(customer: Customer, since: Any, context: Any) -> int:
        value = getattr(customer, column)
        if not value:
            return 0
        return Customer.objects.filter(**{column: value, "created_at__gte": since}).count()

    return count


def _referrals_same_ip(customer: Customer, since: Any, context: Any) -> int:
    referral = _referral(context)
    ip = (referral.ip if referral is not None else None) or customer.signup_ip
    if not ip:
        return 0
    return Referral.objects.filter(ip=ip, created_at__gte=since).count()


def email_is_disposable(email: str) -> bool:
    """The address's domain (or a parent domain) is on the maintained disposable-domains list."""
    domain = email_domain(email)
    parts = domain.split(".")
    return any(".".join(parts[index:]) in blocklist for index in range(max(len(parts) - 1, 0)))


def _read_disposable(context: Any, **kwargs: Any) -> bool | None:
    customer = _customer(context)
    if customer is None or not customer.email:
        return None
    return email_is_disposable(customer.email)


def _referral_parties(context: Any) -> tuple[Referral, Customer, Customer] | None:
    referral = _referral(context)
    if referral is None:
        return None
    referrer = context.cached(
        ("fraud.referrer", referral.pk),
        lambda: Customer.objects.filter(loyalty_memberships=referral.referrer_id).first(),
    )
    referee = context.cached(("fraud.referee", referral.pk), lambda: Customer.objects.get(pk=referral.referee_id))
    return (referral, referrer, referee) if referrer is not None else None


def _read_same(column: str, referral_column: str) -> Any:
    def read(context: Any, **kwargs: Any) -> bool | None:
        parties = _referral_parties(context)
        if parties is None:
            return None
        referral, referrer, referee = parties
        mine = getattr(referrer, column)
        if not mine:
            return False
        return mine in (getattr(referral, referral_column), getattr(referee, column))

    return read


_VELOCITY = [
    ("fraud.points_earned", "Points earned (window)", "Points the customer earned in the window.", _points_earned),
    ("fraud.orders", "Orders (window)", "Orders the customer placed in the window.", _orders),
    (
        "fraud.rewards_redeemed",
        "Rewards redeemed (window)",
        "Loyalty rewards redeemed in the window.",
        _rewards_redeemed,
    ),
    ("fraud.codes_redeemed", "Codes redeemed (window)", "Promotion codes redeemed in the window.", _codes_redeemed),
    (
        "fraud.codes_redeemed_same_ip",
        "Codes redeemed from the same IP (window)",
        "Promotion redemptions from this redemption's IP (or the customer's sign-up IP) in the window, any customer.",
        _codes_redeemed_same_ip,
    ),
    ("fraud.referrals", "Referrals made (window)", "Friends the customer referred in the window.", _referrals),
    (
        "fraud.signups_same_ip",
        "Sign-ups from the same IP (window)",
        "Customers who signed up from the customer's sign-up IP in the window (the customer included).",
        _signups_by("signup_ip"),
    ),
    (
        "fraud.signups_same_device",
        "Sign-ups from the same device (window)",
        "Customers who signed up from the customer's device in the window (the customer included).",
        _signups_by("signup_device"),
    ),
    (
        "fraud.signups_same_email_domain",
        "Sign-ups with the same e-mail domain (window)",
        "Customers who signed up with the customer's e-mail domain in the window (the customer included).",
        _signups_by("email_domain"),
    ),
    (
        "fraud.referrals_same_ip",
        "Referrals from the same IP (window)",
        "Referrals registered from this referral's IP (or the customer's sign-up IP) in the window.",
        _referrals_same_ip,
    ),
]

for _name, _label, _description, _count in _VELOCITY:
    register_field(
        FieldSpec(
            name=_name,
            type="integer",
            label=_label,
            scope="fraud",
            description=_description,
            read=_velocity(_name, _count),
            supports_window=True,
            window_units=VELOCITY_UNITS,
            example=5,
        )
    )

register_field(
    FieldSpec(
        name="fraud.email_disposable",
        type="boolean",
        label="Disposable e-mail address",
        scope="fraud",
        description="The e-mail domain is on the maintained list of disposable e-mail domains.",
        read=_read_disposable,
        example=True,
    )
)
register_field(
    FieldSpec(
        name="referral.same_ip",
        type="boolean",
        label="Referral from the referrer's IP",
        scope="referral",
        description="The referee signed up from the referrer's sign-up IP address.",
        read=_read_same("signup_ip", "ip"),
        example=True,
    )
)
register_field(
    FieldSpec(
        name="referral.same_device",
        type="boolean",
        label="Referral from the referrer's device",
        scope="referral",
        description="The referee signed up on the referrer's device.",
        read=_read_same("signup_device", "device"),
        example=True,
    )
)
