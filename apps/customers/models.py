from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from loyalty_site.lib.timezones import validate_time_zone

from .choices import CustomerState, CustomerStatus, DomainEventStatus, OrderChannel, OrderStatus, OutboxDrainHolder


class MoneyField(models.DecimalField):
    """An amount of money: 14 digits with 2 decimals, zero by default (no default when ``null=True``).

    A named field instead of ``DecimalField(**MONEY)``: the type checker sees the real keyword arguments,
    and ``null=True`` types the attribute as ``Decimal | None``. Migrations keep seeing a plain
    ``DecimalField`` (``deconstruct`` reports that path), so the class is invisible to the schema.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        if not kwargs.get("null"):
            kwargs.setdefault("default", Decimal("0.00"))
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs


# Exchange rates keep 12 decimals (VND or IDR against USD are 0.0000393...); see loyalty_site/lib/money.py.
RATE_DIGITS = 24
RATE_DECIMALS = 12


class ExchangeRate(models.Model):
    """
    How many shop-currency units one unit of `currency` was worth on `day` (1 EUR = 1.08 USD → 1.08).

    An amount dated D uses the latest rate on or before D (a rate holds until the next one).
    """

    currency = models.CharField(max_length=3, help_text="ISO 4217, not the shop currency")
    day = models.DateField()
    rate = models.DecimalField(
        max_digits=RATE_DIGITS,
        decimal_places=RATE_DECIMALS,
        help_text="Shop-currency units per one unit of the currency",
    )
    source = models.CharField(max_length=64, blank=True, help_text="Where the rate came from (admin, api, import…)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["currency", "day"], name="exchange_rate_currency_day_uniq"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_rate_gt_0"),
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate.normalize():f} on {self.day}"


class Customer(models.Model):
    """A shopper known to the platform, with summary figures kept current by the order services."""

    external_id = models.CharField(max_length=128, null=True, blank=True)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    # Chooses the locale variant of message templates (blank: the template's default locale).
    language = models.CharField(
        max_length=16,
        blank=True,
        default="",
        db_default="",  # (bulk loaders that COPY rows without the column keep working)
        help_text='BCP 47 language tag, e.g. "en" or "pt-br" (message templates)',
    )
    # Quiet hours of messages are in the customer's local time (apps/customers/messaging/governance.py).
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",  # (bulk loaders that COPY rows without the column keep working)
        validators=[validate_time_zone],
        help_text="IANA time zone, e.g. Europe/Paris (quiet hours of messages); blank: the sending policy's default",
    )
    preferred_currency = models.CharField(
        max_length=3,
        blank=True,
        help_text="ISO 4217. Derived from the orders (most orders by count, ties: the most recent order) "
        "unless set by the integrator.",
    )
    preferred_currency_set_by_integrator = models.BooleanField(
        default=False,
        db_default=False,
        help_text="True: the integrator set the preferred currency; orders do not change it.",
    )
    birthday = models.DateField(null=True, blank=True)
    state = models.CharField(
        "account state", max_length=16, choices=CustomerState.choices, default=CustomerState.REGISTERED
    )
    accepts_marketing = models.BooleanField(default=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="Free-form custom metadata")
    # Fraud standing (apps.campaigns.fraud sets it through `customer_status_set`): blocked customers earn,
    # redeem and receive nothing; flagged customers' new points are held until reviewed.
    status = models.CharField(max_length=8, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE)
    status_reason = models.CharField(max_length=255, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Where the sign-up came from (forms, widget, API), for velocity checks: indexed with created_at.
    signup_ip = models.GenericIPAddressField(null=True, blank=True)
    signup_device = models.CharField(max_length=64, blank=True, help_text="Device fingerprint sent at sign-up")
    email_domain = models.CharField(max_length=255, blank=True, editable=False)
    # Summary figures, updated in the same transaction as every order write so that audiences over
    # millions of customers never scan the orders table. Money figures are in the shop currency
    # (settings.SHOP_CURRENCY), summed from the orders' shop amounts, never across currencies.
    orders_count = models.PositiveIntegerField(default=0)
    total_spent = MoneyField()
    refunded_total = MoneyField()
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(external_id__isnull=False), name="customer_external_id_uniq"
            ),
            models.CheckConstraint(condition=Q(total_spent__gte=0), name="customer_total_spent_gte_0"),
        ]
        indexes = [
            models.Index(fields=["country"]),
            models.Index(fields=["last_order_at"]),
            models.Index(fields=["total_spent"]),
            models.Index(fields=["orders_count"]),
            models.Index(fields=["state"]),
            models.Index(fields=["status"], name="customer_status_idx", condition=~Q(status="active")),
            models.Index(fields=["signup_ip", "created_at"], name="customer_signup_ip_idx"),
            models.Index(fields=["signup_device", "created_at"], name="customer_signup_device_idx"),
            models.Index(fields=["email_domain", "created_at"], name="customer_email_domain_idx"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or self.external_id or f"Customer #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_blocked(self) -> bool:
        return self.status == CustomerStatus.BLOCKED

    @property
    def is_flagged(self) -> bool:
        return self.status == CustomerStatus.FLAGGED


class CustomerStatusChange(models.Model):
    """The history of a customer's fraud status: who or what changed it, when, from what, to what and why."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="status_changes")
    old_status = models.CharField(max_length=8, choices=CustomerStatus.choices)
    new_status = models.CharField(max_length=8, choices=CustomerStatus.choices)
    reason = models.CharField(max_length=255)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cause = models.CharField(max_length=64, blank=True, help_text="admin, api:token:3, fraud_rule:7 ...")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="customer_status_change_idx")]
        permissions = [("set_customer_status", "Can flag, block or clear a customer's fraud status")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.old_status} → {self.new_status}"


class Product(models.Model):
    """A sellable product; its tags live in tagging.ProductTag."""

    external_id = models.CharField(max_length=128, null=True, blank=True)
    title = models.CharField(max_length=255)
    sku = models.CharField(max_length=64, blank=True)
    price = MoneyField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(external_id__isnull=False), name="product_external_id_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Order(models.Model):
    """A placed order (online or point of sale) as reported by the source system."""

    external_id = models.CharField(max_length=128, null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    currency = models.CharField(max_length=3)
    subtotal = MoneyField()
    discount_total = MoneyField()
    shipping_total = MoneyField()
    tax_total = MoneyField()
    total = MoneyField()
    refunded_total = MoneyField()
    # The same amounts in the shop currency (Shopify's shop_money beside presentment_money), with the
    # rate used. NULL only on rows written before shop amounts existed whose currency had no known
    # rate (`manage.py money_rates --missing` lists them, `--fill` completes them).
    shop_currency = models.CharField(max_length=3, blank=True)
    exchange_rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_DECIMALS, null=True, blank=True)
    subtotal_shop = MoneyField(null=True, blank=True)
    discount_total_shop = MoneyField(null=True, blank=True)
    shipping_total_shop = MoneyField(null=True, blank=True)
    tax_total_shop = MoneyField(null=True, blank=True)
    total_shop = MoneyField(null=True, blank=True)
    refunded_total_shop = MoneyField(null=True, blank=True)
    channel = models.CharField(max_length=16, choices=OrderChannel.choices, default=OrderChannel.ONLINE)
    shipping_country = models.CharField(max_length=2, blank=True)
    status = models.CharField(max_length=24, choices=OrderStatus.choices, default=OrderStatus.PAID)
    store = models.ForeignKey("Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    placed_at = models.DateTimeField(default=timezone.now, help_text="Creation time in the source system")
    checkout_session = models.CharField(
        max_length=120, blank=True, help_text="The checkout session the shop reserved/redeemed promotions under"
    )
    discount_codes = models.JSONField(default=list, blank=True, help_text="Promotion codes used on the order")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    edited_at = models.DateTimeField(
        null=True, blank=True, help_text="When its lines or amounts were last changed after it was placed"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(external_id__isnull=False), name="order_external_id_uniq"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_gte_0"),
            models.CheckConstraint(condition=Q(refunded_total__lte=models.F("total")), name="order_refund_lte_total"),
            models.CheckConstraint(
                condition=Q(total_shop__isnull=True) | Q(total_shop__gte=0), name="order_total_shop_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(exchange_rate__isnull=True) | Q(exchange_rate__gt=0), name="order_exchange_rate_gt_0"
            ),
        ]
        indexes = [
            # A customer's orders by date, carrying what the windowed figures read (count, net spend, status):
            # a window over a list of customers (the time pass's candidates, a bulk run's chunk) is then an
            # index-only scan, one short range per customer, instead of a heap page per order.
            models.Index(
                fields=["customer", "placed_at", "status", "total_shop", "refunded_total_shop", "id"],
                name="order_customer_window_idx",
            ),
            # Orders by date, with their customer and status: the customers whose orders left a window between
            # two time passes of the state tags are read from the index alone.
            models.Index(fields=["placed_at", "customer", "status"], name="order_placed_customer_idx"),
        ]

    def __str__(self) -> str:
        return self.external_id or f"Order #{self.pk}"

    @property
    def is_cancelled(self) -> bool:
        return self.status == OrderStatus.CANCELLED

    @property
    def refundable_amount(self) -> Decimal:
        return self.total - self.refunded_total

    @property
    def net_total_shop(self) -> Decimal | None:
        """What the order counts for in the customer's total spent (shop currency), if known."""
        if self.total_shop is None:
            return None
        return self.total_shop - (self.refunded_total_shop or Decimal("0"))


class OrderLine(models.Model):
    """One line of an order; the title is kept as sold even if the product is renamed later."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="order_lines")
    title = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = MoneyField()
    total = MoneyField()

    class Meta:
        ordering = ["pk"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_gte_1")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title}"


class Refund(models.Model):
    """Money returned on an order; the order's and the customer's refunded totals include it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    external_id = models.CharField(max_length=128, null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    # In the shop currency at the order's rate (so refunding a whole order returns exactly its total_shop).
    amount_shop = MoneyField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(external_id__isnull=False), name="refund_external_id_uniq"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} on {self.order}"


class DraftOrder(models.Model):
    """A quote or draft order created by staff or the storefront, not yet paid."""

    external_id = models.CharField(max_length=128, null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="draft_orders")
    currency = models.CharField(max_length=3)
    total = MoneyField()
    shop_currency = models.CharField(max_length=3, blank=True)
    exchange_rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_DECIMALS, null=True, blank=True)
    total_shop = MoneyField(null=True, blank=True)
    lines = models.JSONField(default=list, blank=True, help_text="[{product_id, title, quantity, unit_price}]")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(external_id__isnull=False), name="draft_order_external_id_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id or f"Draft #{self.pk}"


class Cart(models.Model):
    """An (abandoned) checkout; `abandoned_at` set means the storefront reported it abandoned."""

    external_id = models.CharField(max_length=128, null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="carts")
    currency = models.CharField(max_length=3)
    total = MoneyField()
    shop_currency = models.CharField(max_length=3, blank=True)
    exchange_rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_DECIMALS, null=True, blank=True)
    total_shop = MoneyField(null=True, blank=True)
    lines = models.JSONField(default=list, blank=True, help_text="[{product_id, title, quantity, unit_price}]")
    checkout_url = models.URLField(blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True, db_index=True)
    recovered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(external_id__isnull=False), name="cart_external_id_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id or f"Cart #{self.pk}"

    @property
    def recovered(self) -> bool:
        return self.recovered_at is not None


class CustomerEvent(models.Model):
    """A custom event reported by an integrator (newsletter signup, review posted, social like...)."""

    external_id = models.CharField(max_length=128, null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=100)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(external_id__isnull=False), name="customer_event_external_id_uniq"
            ),
        ]
        indexes = [models.Index(fields=["customer", "name", "occurred_at"]), models.Index(fields=["name"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.customer_id})"


class Store(models.Model):
    """A physical store; a location ping within `radius_m` of it counts as near the store."""

    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=64, unique=True)
    address = models.CharField(max_length=255, blank=True)
    latitude = models.FloatField()
    longitude = models.FloatField()
    radius_m = models.PositiveIntegerField(default=200)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(latitude__gte=-90, latitude__lte=90), name="store_latitude_range"),
            models.CheckConstraint(condition=Q(longitude__gte=-180, longitude__lte=180), name="store_longitude_range"),
        ]

    def __str__(self) -> str:
        return self.name


class DomainEvent(models.Model):
    """
    The outbox: one row per trigger-worthy write, inserted in the same transaction as the write.

    After commit the row is handed to every consumer of its name (`apps.customers.outbox`) and the domain
    signal announces it; each consumer records a DomainEventReceipt, and the row is processed once all
    have. A periodic sweep re-drives rows still pending, so a crash between commit and enqueue loses nothing.
    """

    name = models.CharField(max_length=64, help_text="Trigger name, e.g. order.created")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="domain_events"
    )
    payload = models.JSONField(default=dict, blank=True)
    # What caused this write: "api", "admin", "workflow_run:<id>", ... — used by the loop guard.
    cause = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=DomainEventStatus.choices, default=DomainEventStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # A consumer's batches (the workflow engine's): how many batches took this event — a backlog batch counts
    # its claim in a commit of its own before it runs; a fresh batch counts only an event that failed inside it
    # — and the lease of the backlog batch at work on it. An event counted once is processed alone afterwards,
    # so a poison event (even one that kills its worker) cannot take batches down with it.
    batch_claims = models.PositiveSmallIntegerField(default=0, db_default=0)  # raw set-based INSERTs omit it
    batch_claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "trigger event (outbox)"
        verbose_name_plural = "trigger events (outbox)"
        indexes = [
            models.Index(fields=["status", "created_at"], name="domain_event_pending_idx"),
            models.Index(fields=["customer", "-created_at"], name="domain_event_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"


class DomainEventReceipt(models.Model):
    """
    One consumer (the workflow engine, loyalty earning, ...) has processed one outbox event. An event is
    `processed` once every consumer of its name holds a receipt; the outbox sweep re-drives the others.
    """

    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="receipts")
    consumer = models.CharField(max_length=32, help_text="The consumer's name, e.g. automations or loyalty.")
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["event", "consumer"]
        verbose_name = "trigger event receipt"
        constraints = [models.UniqueConstraint(fields=["event", "consumer"], name="domain_event_receipt_uniq")]

    def __str__(self) -> str:
        return f"{self.consumer} processed {self.event_id}"


class OutboxDrain(models.Model):
    """
    A consumer's drain will claim again (the outbox's coalescing, issue 12): its drain task is queued and has not
    started yet, or a drain that just finished lingers before one more claim. While this row exists, the
    consumer's further events need no task of their own — the holder claims them, since it deletes this row
    before that claim. Written after a write's commit (or by the lingering drain), deleted by the drain; a row
    older than `outbox.DRAIN_STALE` (a lingering drain's: `outbox.LINGER_STALE`) is presumed lost and taken over
    by the next writer.
    """

    consumer = models.CharField(primary_key=True, max_length=32, help_text="The consumer's name.")
    queued_at = models.DateTimeField(help_text="When the drain task was sent, or the drain began to linger.")
    holder = models.CharField(
        max_length=16,
        choices=OutboxDrainHolder.choices,
        default=OutboxDrainHolder.QUEUED,
        help_text="Who will clear the mark and claim: a queued drain, or a drain lingering.",
    )

    class Meta:
        verbose_name = "outbox drain mark"

    def __str__(self) -> str:
        return f"{self.consumer} drain {self.holder} at {self.queued_at:%Y-%m-%d %H:%M:%S}"


# The consent sub-package's models (consents, their history, the suppression list) belong to this app too.
from .consent.models import Consent, ConsentEvent, Suppression  # noqa: E402, F401
from .messaging.models import Delivery, SendingPolicy  # noqa: E402, F401  (messaging's tables live in this app)

# The message templates and brand of the messaging sub-package belong to this app (its migrations hold them).
from .messaging.templating.models import (  # noqa: E402, F401
    Brand,
    MessageTemplate,
    TemplateVariant,
    TemplateVersion,
)
