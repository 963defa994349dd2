"""
Promotions: a Campaign carries incentives (its effects), codes, limits (budgets) and a validation rule;
a Redemption records what a checkout reserved or took, with the budget it took (LimitTake) so a release
or rollback gives exactly that back. Budgets are LimitCounter rows, one per limit x period bucket x
subject, taken with a conditional UPDATE (see services.budgets_take for the lock order).
"""

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from apps.customers.models import Customer, MoneyField, Order
from apps.platform.limits import CounterBase

if TYPE_CHECKING:
    from loyalty_site.lib.conditions import Predicate

    from .eligibility import Outcome
    from .promotion_set import CampaignChecks

from .choices import (
    CampaignStatus,
    CampaignType,
    EffectKind,
    FailureMode,
    GiftCardEntryKind,
    LimitAction,
    LimitMeasure,
    LimitPeriod,
    LimitScope,
    PercentBase,
    RedemptionStatus,
    Stacking,
)

# The campaign fields a marketer sets, in the order the forms show them: the one list the admin form, the write
# services (`campaign_create`/`campaign_update` accept these and no other) and the API serializer all use.
CAMPAIGN_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "owner",
    "type",
    "status",
    "starts_at",
    "ends_at",
    "weekdays",
    "hours_from",
    "hours_until",
    "category",
    "priority",
    "tags",
    "stacking",
    "joint_categories",
    "validation_rule",
    "holdout_percent",
    "low_pool_threshold",
    "reward",
)


class Campaign(models.Model):
    """A promotion campaign: schedule, stacking, validation rule; its incentives say what it gives."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    type = models.CharField(max_length=20, choices=CampaignType.choices, default=CampaignType.DISCOUNT_CODES)
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    weekdays = models.JSONField(default=list, blank=True, help_text="ISO weekdays 1 (Mon) … 7 (Sun); empty = every day")
    hours_from = models.TimeField(null=True, blank=True, help_text="Happy hour start (shop time zone)")
    hours_until = models.TimeField(null=True, blank=True, help_text="Happy hour end (exclusive)")
    category = models.CharField(max_length=50, blank=True, help_text="Stacking category")
    priority = models.IntegerField(default=0, help_text="Higher applies first")
    tags = models.JSONField(default=list, blank=True)
    stacking = models.CharField(max_length=10, choices=Stacking.choices, default=Stacking.STACKABLE)
    joint_categories = models.JSONField(
        default=list, blank=True, help_text="For joint stacking: categories it combines with"
    )
    validation_rule = models.JSONField(null=True, blank=True, help_text="Condition JSON over customer and cart")
    reward = models.OneToOneField(
        "loyalty.Reward",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="promotion_campaign",
        help_text="A loyalty reward of a discount kind whose redemption codes are codes of this campaign "
        "(validated and stacked like every promotion code)",
    )
    holdout_percent = models.PositiveSmallIntegerField(
        default=0,
        help_text="A stable random share of customers (0-50 %) the campaign keeps out (refused `held_out`) to measure "
        "its lift",
    )
    low_pool_threshold = models.PositiveIntegerField(
        default=100, help_text="Alert (trigger campaign.codes_low, e-mail to the owner) when fewer free codes remain"
    )
    low_pool_alerted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the low-pool alert fired (cleared when codes are added)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Not columns: the campaign's incentives and limits, loaded in bulk for a cart's candidates (eligibility).
    _promo_incentives: "list[Incentive]"
    _promo_limits: "list[Limit]"
    _promo_rule: "Predicate | None"  # the validation rule as a predicate (promotion_set.campaigns_prepare)
    _promo_checks: "CampaignChecks"  # what the candidate checks read of it (promotion_set.campaign_checks)

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [models.UniqueConstraint(Upper("name"), name="campaign_name_ci_uniq")]

    def __str__(self) -> str:
        return self.name


class Incentive(models.Model):
    """One effect of a campaign (percent off, fixed off, free shipping, buy X get Y, points multiplier…)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="incentives")
    kind = models.CharField(max_length=20, choices=EffectKind.choices)
    percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    amount = MoneyField(null=True, blank=True, help_text="Fixed amount off, or the fixed price (shop currency)")
    max_discount = MoneyField(null=True, blank=True, help_text="Cap of the discount this incentive gives per order")
    buy_quantity = models.PositiveIntegerField(null=True, blank=True)
    get_quantity = models.PositiveIntegerField(null=True, blank=True)
    multiplier = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    points = models.PositiveIntegerField(
        null=True, blank=True, help_text="Bonus points: awarded to the member when the redemption is redeemed"
    )
    lines_rule = models.JSONField(null=True, blank=True, help_text="Condition over one line: which lines match")
    is_active = models.BooleanField(default=True, help_text="Off: refused with campaign_paused")
    position = models.PositiveSmallIntegerField(default=0)
    # Not a column: the lines rule as a predicate (promotion_set.campaigns_prepare).
    _promo_lines: "Predicate | None"

    class Meta:
        ordering = ["campaign_id", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.campaign} · {self.get_kind_display()}"


class CodeBatch(models.Model):
    """A set-based generation of unique codes from a pattern, with its progress."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="code_batches")
    pattern = models.CharField(max_length=60)
    requested = models.PositiveIntegerField()
    generated = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.pattern} x {self.requested}"


class Code(models.Model):
    """A voucher code of a campaign: generic (many uses) or unique (max_uses 1), stored upper-case."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="codes")
    batch = models.ForeignKey(CodeBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="codes")
    code = models.CharField(max_length=64, unique=True, help_text="Stored upper-case: unique case-insensitively")
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited")
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    expires_days_after_publication = models.PositiveIntegerField(null=True, blank=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="vouchers")
    published_at = models.DateTimeField(null=True, blank=True)
    publication_ref = models.CharField(max_length=120, blank=True, help_text="Who published it (api, admin, run:step)")
    is_active = models.BooleanField(default=True)
    expiry_notified_at = models.DateTimeField(null=True, blank=True, help_text="When voucher.expiring was sent")
    expiry_notice_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The N of the last voucher.expiring notice (N days before expiry)"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(code=Upper("code")), name="promo_code_upper"),
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(uses__lte=models.F("max_uses")), name="promo_code_uses_lte_max"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "customer"], name="promo_code_campaign_cust_idx"),
            # a customer's codes (qualify, `voucher.code` of a run's earlier step)
            models.Index(fields=["customer", "published_at"], name="promo_code_customer_pub_idx"),
            # the daily voucher.expiring notice: published, unused codes by expiry
            models.Index(
                fields=["expires_at"],
                name="promo_code_expiring_idx",
                condition=Q(customer__isnull=False, uses=0, is_active=True),
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Limit(models.Model):
    """A budget: {measure, limit, period, scope, action} of a campaign (or one of its incentives)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="limits")
    incentive = models.ForeignKey(Incentive, null=True, blank=True, on_delete=models.CASCADE, related_name="limits")
    measure = models.CharField(max_length=20, choices=LimitMeasure.choices)
    limit = models.DecimalField(max_digits=14, decimal_places=2)
    period = models.CharField(max_length=10, choices=LimitPeriod.choices, default=LimitPeriod.TOTAL)
    scope = models.CharField(max_length=10, choices=LimitScope.choices, default=LimitScope.CAMPAIGN)
    action = models.CharField(max_length=10, choices=LimitAction.choices, default=LimitAction.REFUSE)

    class Meta:
        ordering = ["campaign_id", "pk"]
        constraints = [models.CheckConstraint(condition=Q(limit__gt=0), name="promo_limit_positive")]

    def __str__(self) -> str:
        money = self.measure in (LimitMeasure.DISCOUNT_AMOUNT, LimitMeasure.ORDER_VALUE)
        value = self.limit if money or self.limit is None else f"{self.limit.normalize():f}"  # points: a whole number
        return f"{self.get_measure_display()} ≤ {value} {self.get_period_display().lower()} / {self.scope}"


class LimitCounter(CounterBase):
    """
    Usage of one limit in one period bucket for one subject ("" for campaign/incentive scope); the fields and the
    take/lock machinery are the platform's (`apps.platform.limits`), shared with loyalty's points limits.
    """

    limit = models.ForeignKey(Limit, on_delete=models.CASCADE, related_name="counters")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["limit", "bucket", "subject"], name="promo_counter_uniq"),
            models.CheckConstraint(condition=Q(used__lte=models.F("limit_value")), name="promo_counter_within_limit"),
        ]

    def __str__(self) -> str:
        return f"{self.limit_id} {self.bucket} {self.subject}: {self.used}/{self.limit_value}"


class PromotionSettings(models.Model):
    """The one row of global stacking settings (the global kill switch is `apps.platform`'s GlobalKillSwitch)."""

    max_per_order = models.PositiveSmallIntegerField(default=5)
    max_per_category = models.PositiveSmallIntegerField(null=True, blank=True)
    percent_base = models.CharField(max_length=10, choices=PercentBase.choices, default=PercentBase.INITIAL)
    failure_mode = models.CharField(max_length=10, choices=FailureMode.choices, default=FailureMode.SKIP)
    reservation_minutes = models.PositiveIntegerField(default=15)

    class Meta:
        verbose_name = "promotion settings"
        verbose_name_plural = "promotion settings"

    def __str__(self) -> str:
        return "Promotion settings"


class PromotionsVersion(models.Model):
    """
    The one-row stamp of the promotion set: a fresh random `stamp` whenever a campaign, incentive, limit or the
    promotion settings change, written by database triggers (migration 0018) in the writing statement's own
    transaction, whatever wrote it (services, the admin, `QuerySet.update`, cascades, raw SQL). Every web process
    keeps the active promotion set in memory under the stamp it was read with (`promotion_set`) and compares it
    with this row on each validation, so a change is seen by the very next validation in every process.
    """

    stamp = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"Promotions version {self.stamp}"


class KillSwitchEvent(models.Model):
    """Audit row of every campaign or incentive switch change: who, when, why (global: platform.KillSwitchChange)."""

    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    incentive = models.ForeignKey(Incentive, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    turned_on = models.BooleanField()
    reason = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=120, blank=True, help_text="api token, admin, …")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"kill switch {'on' if self.turned_on else 'off'} at {self.created_at:%Y-%m-%d %H:%M}"


class Redemption(models.Model):
    """A checkout's reservation or redemption of incentives, with the amounts in the shop currency."""

    session = models.CharField(max_length=120, blank=True, db_index=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="redemptions")
    status = models.CharField(max_length=12, choices=RedemptionStatus.choices)
    currency = models.CharField(max_length=3)
    order_total = MoneyField()
    discount_total = MoneyField()
    rolled_back_total = MoneyField(help_text="Order value given back by rollbacks")
    discount_rolled_back = MoneyField(
        help_text="Discount given back by rollbacks: the sum of the items' discount_returned (reports subtract it)"
    )
    rolled_back_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last rollback (whole or partial) happened (the reports' refresh)"
    )
    gift_card_total = MoneyField(help_text="Paid by gift cards (not a discount: not in discount_total)")
    order_ref = models.CharField(max_length=120, blank=True, help_text="The order's external id, as sent at redeem")
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="promotion_redemptions",
        help_text="The order this redemption paid for (linked when the order arrives; ROI reads it)",
    )
    request = models.JSONField(default=dict, help_text="The cart as sent")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    ip = models.GenericIPAddressField(
        null=True, blank=True, help_text="The shopper's IP address, as sent (fraud checks)"
    )
    device = models.CharField(max_length=64, blank=True, help_text="The shopper's device id, as sent (fraud checks)")
    # Not a column: the computation a reserve/redeem made, for the API's answer.
    _outcome: "Outcome"

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="promo_redemption_expiry_idx"),
            models.Index(fields=["order_ref"], name="promo_redemption_order_ref_idx"),
            models.Index(fields=["ip", "redeemed_at"], name="promo_redemption_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}"


class RedemptionItem(models.Model):
    """One incentive applied by a redemption and the discount it gave."""

    redemption = models.ForeignKey(Redemption, on_delete=models.CASCADE, related_name="items")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="redemption_items")
    incentive = models.ForeignKey(Incentive, on_delete=models.PROTECT, related_name="redemption_items")
    code = models.ForeignKey(Code, null=True, blank=True, on_delete=models.PROTECT, related_name="redemption_items")
    discount = MoneyField()
    discount_returned = MoneyField(
        help_text="Share of the discount given back by rollbacks: discount x refunded share, to the cent (half even)"
    )
    points = models.PositiveIntegerField(default=0, help_text="Loyalty points it awarded (bonus points)")

    def __str__(self) -> str:
        return f"{self.campaign} -{self.discount}"


class LimitTake(models.Model):
    """What a redemption took from one counter (given back on release/rollback)."""

    redemption = models.ForeignKey(Redemption, on_delete=models.CASCADE, related_name="takes")
    counter = models.ForeignKey(LimitCounter, on_delete=models.CASCADE, related_name="takes")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    returned = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    def __str__(self) -> str:
        return f"{self.amount} from counter {self.counter_id}"


class GiftCard(models.Model):
    """
    A gift card: a code of a gift-cards campaign with a balance in one currency (minor units are the currency's).
    The balance is the sum of its ledger entries (GiftCardEntry); `balance` is that sum kept on the row so a spend
    is one conditional UPDATE (`balance >= amount`) under the row lock: never overdrawn (a check constraint too).
    """

    code = models.OneToOneField(Code, on_delete=models.PROTECT, related_name="gift_card")
    currency = models.CharField(max_length=3)
    initial = MoneyField(help_text="Amount at issue")
    balance = MoneyField(help_text="What is left (the sum of the ledger)")
    created_at = models.DateTimeField(default=timezone.now)
    # The holder and the expiry are the code's (`code.customer`, `code.expires_at`): one place for each.

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="gift_card_balance_gte_0")]

    def __str__(self) -> str:
        return f"{self.code.code} {self.balance} {self.currency}"


class GiftCardEntry(models.Model):
    """One signed movement of a gift card's balance: issue, top-up, spend, refund, expiry; who/what and why."""

    card = models.ForeignKey(GiftCard, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=10, choices=GiftCardEntryKind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="Signed: + credit, - debit")
    balance_after = MoneyField()
    redemption = models.ForeignKey(
        Redemption, null=True, blank=True, on_delete=models.SET_NULL, related_name="gift_card_entries"
    )
    reason = models.CharField(max_length=255, blank=True)
    actor = models.CharField(max_length=120, blank=True, help_text="user:3, api, order:7, expiry …")
    ref = models.CharField(
        max_length=128, null=True, blank=True, unique=True, help_text="Idempotency: the same ref twice is one entry"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "gift card entries"
        indexes = [models.Index(fields=["card", "-created_at"], name="gift_entry_card_time_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+}"


class CampaignHoldout(models.Model):
    """
    A customer the campaign held out: they were due to receive something from it (a code published to a segment,
    a voucher from a workflow, a form or the API) and got nothing, because they fall in the campaign's stable
    holdout share. One row per campaign and customer (the first time); the reports compare these customers'
    orders with those of the customers who received a code (the campaign's lift).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="holdouts")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="campaign_holdouts")
    held_out_at = models.DateTimeField(default=timezone.now, help_text="When the campaign first kept them out")
    ref = models.CharField(max_length=120, blank=True, help_text="What was withheld (segment publication, run step…)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "customer"], name="promo_holdout_uniq")]
        # The reports' refresh reads the rows recorded since its previous run.
        indexes = [models.Index(fields=["held_out_at"], name="promo_holdout_at_idx")]

    def __str__(self) -> str:
        return f"customer {self.customer_id} held out of campaign {self.campaign_id}"
