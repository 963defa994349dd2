"""Loyalty: programs, members, the points ledger (lots, allocations, entries), rules, tiers, rewards, referrals."""

import secrets
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.customers.models import Customer, DomainEvent, Order, Product
from apps.platform.limits import CounterBase, LimitPeriod
from loyalty_site.lib.money import CurrencyError, currency_code, money_format, shop_currency

from .choices import (
    EntryKind,
    ExpiryPolicy,
    FulfilmentStatus,
    HoldStatus,
    LotStatus,
    RedemptionStatus,
    ReferralStatus,
    ReturnPolicy,
    RewardKind,
    Rounding,
    RuleKind,
    RuleLimitScope,
    SourceType,
    TierBasis,
    TierDowngrade,
    TierWindow,
)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O/1/I: codes are typed by staff


def code_generate(length: int = 10) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


class Program(models.Model):
    """A loyalty program: how points are earned, when they activate and expire, and how refunds take them back."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    auto_enroll = models.BooleanField(default=True, help_text="Join customers automatically on their first order")
    currency = models.CharField(
        max_length=3, default="USD", help_text="Informative; amounts, thresholds and earning use SHOP_CURRENCY"
    )
    points_per_unit = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("1"), help_text="Base points per shop-currency unit spent"
    )
    currency_earning_rates = models.JSONField(
        default=dict,
        blank=True,
        help_text='Optional points per unit of an order\'s own currency, e.g. {"JPY": "0.01", "EUR": "1"}; '
        "orders in other currencies earn points_per_unit per shop-currency unit",
    )
    rounding = models.CharField(max_length=8, choices=Rounding.choices, default=Rounding.DOWN)
    earn_after_discounts = models.BooleanField(default=True)
    earn_on_shipping = models.BooleanField(default=False)
    min_order_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    excluded_product_tags = models.JSONField(
        default=list, blank=True, help_text="Lines whose product carries one of these tags earn nothing"
    )
    pending_days = models.PositiveIntegerField(default=0, help_text="Earned points stay pending this many days")
    expiry_policy = models.CharField(max_length=24, choices=ExpiryPolicy.choices, default=ExpiryPolicy.NEVER)
    expiry_days = models.PositiveIntegerField(default=365, help_text="N for 'days after activation' / 'inactivity'")
    expiry_notice_days = models.PositiveIntegerField(
        default=3, help_text="Fire loyalty.points_expiring this many days before points expire"
    )
    return_policy = models.CharField(max_length=16, choices=ReturnPolicy.choices, default=ReturnPolicy.FROM_BALANCE)
    tier_basis = models.CharField(max_length=16, choices=TierBasis.choices, default=TierBasis.POINTS_EARNED)
    tier_window = models.CharField(max_length=16, choices=TierWindow.choices, default=TierWindow.LIFETIME)
    tier_window_days = models.PositiveIntegerField(default=365)
    tier_downgrade = models.CharField(max_length=16, choices=TierDowngrade.choices, default=TierDowngrade.NEVER)
    tier_grace_days = models.PositiveIntegerField(default=30)
    referrer_bonus = models.PositiveIntegerField(default=0)
    referee_bonus = models.PositiveIntegerField(default=0)
    referral_cap = models.PositiveIntegerField(null=True, blank=True, help_text="Max rewarded referrals per referrer")
    referral_requires_purchase = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(points_per_unit__gte=0), name="program_points_per_unit_gte_0"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors = currency_earning_rates_errors(self.currency_earning_rates)
        if errors:
            raise ValidationError({"currency_earning_rates": errors})

    def earning_rate_for(self, currency: str) -> Decimal | None:
        """Points per unit of `currency` when the program sets one for it, else None."""
        value = (self.currency_earning_rates or {}).get(currency)
        return None if value is None else Decimal(str(value))


def currency_earning_rates_errors(value: object) -> list[str]:
    """What is wrong with a `currency_earning_rates` value (an object of ISO code → points ≥ 0)."""
    if not isinstance(value, dict):
        return ["Must be a JSON object of currency code → points per unit."]
    errors = []
    for code, points in value.items():
        try:
            if currency_code(code) != code:
                raise CurrencyError(f"Write {code!r} as {currency_code(code)!r}.")
        except CurrencyError as error:
            errors.append(f"{code}: {error.message}")
            continue
        try:
            number = Decimal(str(points))
        except InvalidOperation:
            errors.append(f"{code}: {points!r} is not a number.")
            continue
        if isinstance(points, bool) or not number.is_finite() or number < 0:
            errors.append(f"{code}: points per unit must be a number ≥ 0.")
    return errors


class Tier(models.Model):
    """A membership level reached at `threshold` (points earned or amount spent, per the program's window)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=64)
    rank = models.PositiveSmallIntegerField(help_text="Higher rank = better tier")
    threshold = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    multiplier = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1"))
    expiry_days_override = models.PositiveIntegerField(
        null=True, blank=True, help_text="Points earned in this tier expire after this many days instead"
    )
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["program", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["program", "rank"], name="tier_program_rank_uniq"),
            models.UniqueConstraint(fields=["program", "name"], name="tier_program_name_uniq"),
            models.CheckConstraint(condition=Q(multiplier__gte=0), name="tier_multiplier_gte_0"),
        ]

    def __str__(self) -> str:
        return self.name


def cockpit_nonce_generate() -> str:
    return secrets.token_urlsafe(18)


class Membership(models.Model):
    """A customer's membership of a program: referral code, tier (with an optional manual floor)."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="memberships")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="loyalty_memberships")
    joined_at = models.DateTimeField(default=timezone.now)
    referral_code = models.CharField(max_length=16, unique=True, default=code_generate)
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referred_members"
    )
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tier_floor = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Manually assigned minimum"
    )
    tier_since = models.DateTimeField(null=True, blank=True)
    tier_hold_until = models.DateTimeField(
        null=True, blank=True, help_text="The current tier is kept until then even if no longer qualified"
    )
    last_activity_at = models.DateTimeField(default=timezone.now)
    # Signed into every cockpit link; replacing it (support's "revoke cockpit links") kills them all.
    cockpit_nonce = models.CharField(max_length=32, default=cockpit_nonce_generate, editable=False)
    referral_shows_name = models.BooleanField(
        default=False, help_text="The member chose to show their first name on their referral page"
    )

    class Meta:
        ordering = ["-pk"]
        constraints = [models.UniqueConstraint(fields=["program", "customer"], name="membership_program_customer_uniq")]
        permissions = [
            ("rotate_cockpit_link", "Can revoke a member's cockpit links"),
            ("issue_widget_token", "Can issue storefront widget tokens for a customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} in {self.program}"


class Balance(models.Model):
    """
    The member's figures, kept in step with the ledger in the same transaction (never recomputed on read).

    `active` can be spent; `debt` is what a refund could not take back under the allow-negative policy
    (the displayed balance is active - debt; new points pay the debt first).
    """

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, primary_key=True, related_name="balance")
    active = models.IntegerField(default=0)
    pending = models.IntegerField(default=0)
    debt = models.IntegerField(default=0)
    expiring_soon = models.IntegerField(default=0)
    lifetime_earned = models.IntegerField(default=0)
    lifetime_spent = models.IntegerField(default=0)
    lifetime_expired = models.IntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(active__gte=0), name="balance_active_gte_0"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="balance_pending_gte_0"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="balance_debt_gte_0"),
            models.CheckConstraint(condition=Q(expiring_soon__gte=0), name="balance_expiring_gte_0"),
            models.CheckConstraint(condition=Q(lifetime_spent__gte=0), name="balance_lifetime_spent_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.active} pts ({self.pending} pending)"

    @property
    def available(self) -> int:
        return self.active - self.debt


class EarningRule(models.Model):
    """How extra points are earned: per amount, fixed per custom event, product-tag multiplier, time-boxed bonus."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    is_active = models.BooleanField(default=True)
    points = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0"), help_text="per_amount: points per unit; event: points"
    )
    multiplier = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1"))
    event_name = models.CharField(max_length=100, blank=True)
    product_tag = models.CharField(max_length=100, blank=True)
    conditions = models.JSONField(default=dict, blank=True, help_text="Shared condition language")
    tiers = models.ManyToManyField(Tier, blank=True, related_name="rules", help_text="Empty = every tier")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["program", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(multiplier__gte=0), name="rule_multiplier_gte_0"),
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.FIXED_EVENT) | ~Q(event_name=""), name="rule_event_needs_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def is_live(self, at) -> bool:
        return (
            self.is_active
            and (self.starts_at is None or self.starts_at <= at)
            and (self.ends_at is None or at < self.ends_at)
        )


class EarningRuleLimit(models.Model):
    """
    A points limit of an earning rule: at most `points` per period from this rule, for every customer together
    (scope rule) or for each customer. Counted in EarningRuleCounter rows by the platform's limit machinery
    (`apps.platform.limits`), exact under concurrency; an earning that would cross it is reduced to what is left.
    """

    rule = models.ForeignKey(EarningRule, on_delete=models.CASCADE, related_name="limits")
    points = models.PositiveIntegerField()
    period = models.CharField(max_length=10, choices=LimitPeriod.choices, default=LimitPeriod.DAY)
    scope = models.CharField(max_length=10, choices=RuleLimitScope.choices, default=RuleLimitScope.CUSTOMER)

    class Meta:
        ordering = ["rule_id", "pk"]
        constraints = [models.CheckConstraint(condition=Q(points__gt=0), name="rule_limit_points_gt_0")]

    def __str__(self) -> str:
        who = "per customer" if self.scope == RuleLimitScope.CUSTOMER else "in all"
        return f"≤ {self.points} points {self.get_period_display().lower()} {who}"


class EarningRuleCounter(CounterBase):
    """Points one earning-rule limit gave in one period bucket ("" = every customer, `customer:<id>`)."""

    limit = models.ForeignKey(EarningRuleLimit, on_delete=models.CASCADE, related_name="counters")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["limit", "bucket", "subject"], name="rule_counter_uniq"),
            models.CheckConstraint(condition=Q(used__lte=F("limit_value")), name="rule_counter_within_limit"),
        ]

    def __str__(self) -> str:
        return f"{self.limit_id} {self.bucket} {self.subject}: {self.used}/{self.limit_value}"


class EarningRuleTake(models.Model):
    """
    What one lot took from one points-limit counter of its rule, so a reversal (refund, cancellation, rejected
    hold) gives exactly that back to the counter it came from — even after the limit's other counters moved on.
    """

    lot = models.ForeignKey("PointLot", on_delete=models.CASCADE, related_name="limit_takes")
    counter = models.ForeignKey(EarningRuleCounter, on_delete=models.CASCADE, related_name="takes")
    amount = models.PositiveIntegerField()
    returned = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lot", "counter"], name="rule_take_uniq"),
            models.CheckConstraint(condition=Q(returned__lte=F("amount")), name="rule_take_returned_lte_amount"),
        ]

    def __str__(self) -> str:
        return f"lot {self.lot_id}: {self.amount} from counter {self.counter_id}"


class PointLot(models.Model):
    """
    One earning. `remaining` is what is still pending/spendable; spending draws from lots soonest-expiring
    first and records an allocation, so every later reversal returns points to the lot they came from.
    `source_key` is unique: replaying the same order/event never earns twice.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="lots")
    amount = models.PositiveIntegerField()
    remaining = models.PositiveIntegerField()
    reversed_amount = models.PositiveIntegerField(default=0, help_text="Taken back by refunds/cancellations")
    status = models.CharField(max_length=12, choices=LotStatus.choices, default=LotStatus.PENDING)
    source_type = models.CharField(max_length=12, choices=SourceType.choices)
    source_key = models.CharField(max_length=128, unique=True)
    rule = models.ForeignKey(EarningRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="lots")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cause = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    activates_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    # Held for review (a flagged customer, or a fraud rule's "hold points"): pending, never activated by
    # time; the hold's approval activates it, its rejection reverses it.
    held = models.BooleanField(default=False)
    hold = models.ForeignKey("PointHold", null=True, blank=True, on_delete=models.SET_NULL, related_name="lots")

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_amount_gt_0"),
            models.CheckConstraint(condition=Q(remaining__lte=F("amount")), name="lot_remaining_lte_amount"),
            models.CheckConstraint(condition=Q(reversed_amount__lte=F("amount")), name="lot_reversed_lte_amount"),
        ]
        indexes = [
            models.Index(fields=["membership", "status", "expires_at"], name="lot_fefo_idx"),
            models.Index(fields=["status", "activates_at"], name="lot_activation_idx"),
            models.Index(fields=["status", "expires_at"], name="lot_expiry_idx"),
            # Fraud velocity: points a member earned in the last minutes/hours.
            models.Index(fields=["membership", "created_at"], name="lot_member_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} pts ({self.status}) {self.source_key}"


class PointHold(models.Model):
    """
    Points held for review: the lots of one member whose source key starts with `source_prefix` (`order:42:`),
    or every new lot of the member when the prefix is empty (a flagged customer). Lots created while the hold
    is open join it. Approving activates them; rejecting reverses them exactly.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="holds")
    source_prefix = models.CharField(max_length=128, blank=True, help_text="Empty = every new lot of the member")
    reason = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=HoldStatus.choices, default=HoldStatus.OPEN)
    cause = models.CharField(max_length=64, blank=True, help_text="customer_flagged, fraud_rule:7 ...")
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "source_prefix"], condition=Q(status="open"), name="hold_open_uniq"
            ),
        ]
        indexes = [models.Index(fields=["membership", "status"], name="hold_member_status_idx")]

    def __str__(self) -> str:
        return f"Hold {self.source_prefix or 'all new points'} ({self.status})"


class LedgerEntry(models.Model):
    """An audited, signed movement of points: what changed, by how much, who/what caused it and why."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=12, choices=EntryKind.choices)
    active_delta = models.IntegerField(default=0)
    pending_delta = models.IntegerField(default=0)
    debt_delta = models.IntegerField(default=0)
    active_after = models.IntegerField(help_text="Active balance after this entry")
    lot = models.ForeignKey(PointLot, null=True, blank=True, on_delete=models.SET_NULL, related_name="entries")
    redemption = models.ForeignKey(
        "Redemption", null=True, blank=True, on_delete=models.SET_NULL, related_name="entries"
    )
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cause = models.CharField(max_length=64, blank=True, help_text="api, admin, workflow_run:42, order:7 ...")
    idempotency_key = models.CharField(max_length=128, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["membership", "-created_at"], name="entry_member_time_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.active_delta:+d}/{self.pending_delta:+d}"


class PointAllocation(models.Model):
    """How many points of one spend (a debit entry) came from which lot; `returned` of them given back."""

    entry = models.ForeignKey(LedgerEntry, on_delete=models.CASCADE, related_name="allocations")
    lot = models.ForeignKey(PointLot, on_delete=models.CASCADE, related_name="allocations")
    amount = models.PositiveIntegerField()
    returned = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_gt_0"),
            models.CheckConstraint(condition=Q(returned__lte=F("amount")), name="allocation_returned_lte_amount"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} from lot {self.lot_id}"


class Reward(models.Model):
    """Something points buy: a discount, free shipping, gift card, cash back, product or material prize."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rewards")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=24, choices=RewardKind.choices)
    value = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    points_cost = models.PositiveIntegerField()
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Remaining; empty = unlimited")
    per_customer_limit = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    code_valid_days = models.PositiveIntegerField(default=30, help_text="Issued codes expire after this many days")
    tiers = models.ManyToManyField(Tier, blank=True, related_name="rewards", help_text="Empty = every tier")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Not a column: the viewing member's price, set on the rows `selectors.rewards_priced` returns.
    member_price: int
    # Not a column: what the member keeps after paying `member_price` (the cockpit's confirmation).
    balance_after: int

    class Meta:
        ordering = ["program", "points_cost", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_points_cost_gt_0"),
            models.CheckConstraint(condition=Q(stock__isnull=True) | Q(stock__gte=0), name="reward_stock_gte_0"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def needs_fulfilment(self) -> bool:
        return self.kind in (RewardKind.FREE_PRODUCT, RewardKind.MATERIAL_PRIZE)

    @property
    def value_display(self) -> str:
        """The reward's value as a customer reads it: money in the shop currency (`$5.00`), or `10%`."""
        if self.kind in (RewardKind.FIXED_DISCOUNT, RewardKind.GIFT_CARD, RewardKind.CASH_BACK) and self.value:
            return money_format(self.value, shop_currency())
        if self.kind == RewardKind.PERCENTAGE_DISCOUNT and self.value:
            return f"{self.value.normalize():f}%"
        return ""

    @property
    def value_with_currency(self) -> str:
        """`value_display` with the ISO code of its currency (`$5.00 USD`): a symbol alone can be ambiguous."""
        text = self.value_display
        if not text or self.kind == RewardKind.PERCENTAGE_DISCOUNT:
            return text
        code = shop_currency()
        return text if code in text else f"{text} {code}"


class RewardTierPrice(models.Model):
    """A tier-specific points price for a reward (e.g. Gold members pay less)."""

    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="tier_prices")
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="reward_prices")
    points_cost = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reward", "tier"], name="reward_tier_price_uniq"),
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_tier_price_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.reward} for {self.tier}: {self.points_cost}"


class Redemption(models.Model):
    """A reward bought with points: a single-use code (also shown as a QR code for in-store use)."""

    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="redemptions")
    code = models.CharField(max_length=16, unique=True, default=code_generate)
    status = models.CharField(max_length=12, choices=RedemptionStatus.choices, default=RedemptionStatus.ISSUED)
    points_spent = models.PositiveIntegerField()
    fulfilment_status = models.CharField(
        max_length=12, choices=FulfilmentStatus.choices, default=FulfilmentStatus.NOT_APPLICABLE
    )
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    used_channel = models.CharField(max_length=16, blank=True, help_text="online / store")
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    cause = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=128, null=True, blank=True, unique=True)
    # Not a column: the code as an SVG QR image, set by the cockpit page for display.
    qr_svg: str

    class Meta:
        ordering = ["-issued_at", "-pk"]
        indexes = [
            models.Index(fields=["membership", "reward", "status"], name="redemption_limit_idx"),
            models.Index(fields=["membership", "issued_at"], name="redemption_member_time_idx"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def qr_payload(self) -> str:
        return f"LOYALTY:{self.code}"


class Referral(models.Model):
    """A referee who registered with a member's referral code; bonuses are lots keyed by this row."""

    referrer = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="referrals_made")
    referee = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="loyalty_referral")
    status = models.CharField(max_length=12, choices=ReferralStatus.choices, default=ReferralStatus.REGISTERED)
    referrer_bonus = models.PositiveIntegerField(default=0)
    referee_bonus = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    rewarded_at = models.DateTimeField(null=True, blank=True)
    # Where the referee signed up from (for same-IP / same-device checks) and why a fraud check refused it.
    ip = models.GenericIPAddressField(null=True, blank=True)
    device = models.CharField(max_length=64, blank=True)
    refused_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["referrer", "created_at"], name="referral_referrer_time_idx"),
            models.Index(fields=["ip", "created_at"], name="referral_ip_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.referrer} → {self.referee}"


class EarningBatchClaim(models.Model):
    """
    Loyalty's earning batches on one outbox event (the engine counts its own on the event row): how many batches
    took it without earning it — a backlog batch counts its claim in a commit of its own before it earns, a fresh
    batch counts an event that failed inside it — and the lease of the backlog batch at work on it. An event
    counted once is earned alone from then on, so a poison event cannot take batches down with it. The row goes
    when the event is earned.
    """

    event = models.OneToOneField(
        DomainEvent, primary_key=True, on_delete=models.CASCADE, related_name="loyalty_batch_claim"
    )
    claims = models.PositiveSmallIntegerField(default=1)
    claimed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"loyalty batch claim {self.claims} on event {self.event_id}"
