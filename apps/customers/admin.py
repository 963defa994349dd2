"""
Admin for the data plane. Orders, refunds and the outbox are history: they are shown read-only and
changed only through actions that call the services (so summary figures and trigger events stay right).
Tag inlines and the "add tag" action are added by `apps/tagging/admin.py` (tagging depends on customers).
"""

from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from loyalty_site.lib.money import CurrencyError, currency_code, money_format, rate_clean, shop_currency
from loyalty_site.lib.references import reference_link

from . import services
from .choices import CustomerStatus
from .currency import exchange_rate_set
from .models import (
    Cart,
    Customer,
    CustomerEvent,
    CustomerStatusChange,
    DomainEvent,
    DomainEventReceipt,
    DraftOrder,
    ExchangeRate,
    Order,
    OrderLine,
    OutboxDrain,
    Product,
    Refund,
    Store,
)
from .outbox import outbox_drain_live

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

ADMIN_CAUSE = "admin"
RECENT_ORDERS = 20


class ReadOnlyAdminMixin:
    """History rows: browsable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _shop_money(amount: Any) -> str:
    """An amount in the shop currency, or a dash while its rate is unknown (`money_rates --missing`)."""
    return "— (no rate)" if amount is None else money_format(amount, shop_currency())


class TotalsAdminMixin:
    """The `total_display` / `total_shop_display` columns of rows with a total in their currency and in the shop's
    (orders, draft orders, carts)."""

    @admin.display(description="Total", ordering="total")
    def total_display(self, row: Order | DraftOrder | Cart) -> str:
        return money_format(row.total, row.currency)

    @admin.display(description="Total (shop currency)", ordering="total_shop")
    def total_shop_display(self, row: Order | DraftOrder | Cart) -> str:
        return _shop_money(row.total_shop)


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, failed: list[str], verb: str) -> None:
    modeladmin.message_user(request, f"{done} {verb}.", messages.SUCCESS)
    if failed:
        modeladmin.message_user(request, f"{len(failed)} skipped: " + "; ".join(failed[:10]), messages.WARNING)


# --- Customers -------------------------------------------------------------------------------------


class CustomerStatusChangeInline(admin.TabularInline):
    """The customer's fraud status history (read-only: changes go through the status actions)."""

    model = CustomerStatusChange
    extra = 0
    can_delete = False
    fields = ["created_at", "old_status", "new_status", "reason", "actor", "cause"]
    readonly_fields = ["created_at", "old_status", "new_status", "reason", "actor", "cause"]
    verbose_name_plural = "Fraud status history"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "overview_link",
        "external_id",
        "email",
        "country",
        "state",
        "status",
        "accepts_marketing",
        "orders_count",
        "total_spent_shop",
        "last_order_at",
    ]
    list_filter = ["state", "status", "accepts_marketing", "country", "preferred_currency"]
    search_fields = ["external_id", "email", "first_name", "last_name", "phone"]

    @admin.display(description="360°")
    def overview_link(self, customer: Customer) -> str:
        """The read-only customer page (everything about the customer); the name opens the edit form."""
        return format_html('<a href="{}">View</a>', reverse("console:customer", args=[customer.pk]))

    readonly_fields = [
        "recent_orders",
        "preferred_currency_set_by_integrator",
        "state",
        "status",
        "status_reason",
        "status_changed_at",
        "signup_ip",
        "signup_device",
        "unsubscribed_at",
        "orders_count",
        "total_spent_shop",
        "refunded_total_shop",
        "first_order_at",
        "last_order_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["external_id", "email", "phone", "first_name", "last_name", "birthday"]}),
        (
            "Locale",
            {
                "fields": [
                    "country",
                    "language",
                    "time_zone",
                    "preferred_currency",
                    "preferred_currency_set_by_integrator",
                ]
            },
        ),
        ("State and consent", {"fields": ["state", "accepts_marketing", "unsubscribed_at"]}),
        (
            "Fraud status (blocked: earns, redeems and receives nothing; flagged: new points held for review)",
            {"fields": ["status", "status_reason", "status_changed_at", "signup_ip", "signup_device"]},
        ),
        ("Custom metadata", {"fields": ["attributes"]}),
        (
            "Summary figures (kept current by the order services; money in the shop currency)",
            {
                "fields": [
                    "orders_count",
                    "total_spent_shop",
                    "refunded_total_shop",
                    "first_order_at",
                    "last_order_at",
                ]
            },
        ),
        ("Recent orders", {"fields": ["recent_orders"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["activate_customers", "unsubscribe_customers", "flag_customers", "block_customers", "clear_customers"]
    inlines = [CustomerStatusChangeInline]
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="Total spent", ordering="total_spent")
    def total_spent_shop(self, customer: Customer) -> str:
        return money_format(customer.total_spent, shop_currency())

    @admin.display(description="Refunded", ordering="refunded_total")
    def refunded_total_shop(self, customer: Customer) -> str:
        return money_format(customer.refunded_total, shop_currency())

    @admin.display(description="Last orders")
    def recent_orders(self, customer: Customer) -> str:
        # Not an inline: a customer may have thousands of orders; show the latest and link to the rest.
        if customer.pk is None:
            return "—"
        orders = list(customer.orders.order_by("-placed_at", "-pk")[:RECENT_ORDERS])
        if not orders:
            return "No orders yet."
        rows = format_html_join(
            "",
            "<tr><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:customers_order_change", args=[order.pk]),
                    order,
                    date_format(order.placed_at, "DATETIME_FORMAT"),
                    order.get_channel_display(),
                    order.get_status_display(),
                    money_format(order.total, order.currency),
                    money_format(order.refunded_total, order.currency),
                    _shop_money(order.net_total_shop),
                )
                for order in orders
            ),
        )
        all_orders = reverse("admin:customers_order_changelist") + f"?customer__id__exact={customer.pk}"
        return format_html(
            "<table><thead><tr><th>Order</th><th>Placed</th><th>Channel</th><th>Status</th><th>Total</th>"
            "<th>Refunded</th><th>Counts (shop currency)</th></tr></thead><tbody>{}</tbody></table>"
            "<p><a href='{}'>All {} orders</a></p>",
            rows,
            all_orders,
            customer.orders_count,
        )

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.CUSTOMER_FIELDS if name in form.cleaned_data}
        if change:
            # Only what was edited: re-saving an unchanged derived preferred currency must not pin it.
            fields = {name: value for name, value in fields.items() if name in form.changed_data}
            services.customer_update(customer=obj, cause=ADMIN_CAUSE, **fields)
            return
        created = services.customer_create(
            external_id=form.cleaned_data.get("external_id"), cause=ADMIN_CAUSE, **fields
        )
        # The admin goes on to save inlines against `obj`: make it the row the service created.
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db

    @admin.action(description="Activate selected customers", permissions=["change"])
    def activate_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        done, failed = 0, []
        for customer in queryset.order_by("pk"):
            try:
                services.customer_activate(customer=customer, cause=ADMIN_CAUSE)
                done += 1
            except ValidationError as error:
                failed.append(f"{customer}: {' '.join(error.messages)}")
        _report(self, request, done, failed, "customer(s) activated")

    def has_set_status_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("customers.set_customer_status")

    def _status_set(self, request: HttpRequest, queryset: QuerySet[Customer], status: str, verb: str) -> None:
        done = 0
        for customer in queryset.order_by("pk"):
            reason = f"{verb} in the console by {request.user.get_username()}"
            services.customer_status_set(
                customer=customer, status=status, reason=reason, user=request.user, cause=ADMIN_CAUSE
            )
            done += 1
        _report(self, request, done, [], f"customer(s) {verb.lower()}")

    @admin.action(description="Flag selected customers for review (new points held)", permissions=["set_status"])
    def flag_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._status_set(request, queryset, CustomerStatus.FLAGGED, "Flagged")

    @admin.action(description="Block selected customers (no earning, redeeming, marketing)", permissions=["set_status"])
    def block_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._status_set(request, queryset, CustomerStatus.BLOCKED, "Blocked")

    @admin.action(description="Clear the fraud status of selected customers (active)", permissions=["set_status"])
    def clear_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._status_set(request, queryset, CustomerStatus.ACTIVE, "Cleared")

    @admin.action(description="Unsubscribe selected customers from marketing", permissions=["change"])
    def unsubscribe_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        done = 0
        for customer in queryset.order_by("pk"):
            services.customer_unsubscribe(customer=customer, cause=ADMIN_CAUSE)
            done += 1
        _report(self, request, done, [], "customer(s) unsubscribed")


# --- Products and stores --------------------------------------------------------------------------


class ProductCounts(TypedDict):
    lines_sold_count: int


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "sku", "external_id", "price", "lines_sold", "created_at"]
    search_fields = ["title", "sku", "external_id"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).annotate(lines_sold_count=Count("order_lines"))

    @admin.display(description="Order lines", ordering="lines_sold_count")
    def lines_sold(self, product: "WithAnnotations[Product, ProductCounts]") -> int:
        return product.lines_sold_count


class StoreCounts(TypedDict):
    orders_total_count: int


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "latitude", "longitude", "radius_m", "is_active", "orders_total"]
    list_filter = ["is_active"]
    search_fields = ["name", "code", "address"]
    prepopulated_fields = {"code": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Store]:
        return super().get_queryset(request).annotate(orders_total_count=Count("orders"))

    @admin.display(description="POS orders", ordering="orders_total_count")
    def orders_total(self, store: "WithAnnotations[Store, StoreCounts]") -> int:
        return store.orders_total_count


# --- Orders ----------------------------------------------------------------------------------------


class OrderLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderLine
    readonly_fields = fields = ("product", "title", "quantity", "unit_price", "total")
    extra = 0
    max_num = 0

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    readonly_fields = fields = ("external_id", "amount", "amount_shop", "reason", "created_at")
    extra = 0
    max_num = 0

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderCounts(TypedDict):
    line_total_count: int


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, TotalsAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "customer",
        "channel",
        "status",
        "total_display",
        "total_shop_display",
        "refunded_display",
        "line_count",
        "placed_at",
    ]
    list_filter = ["status", "channel", "currency", "store"]
    search_fields = ["external_id", "customer__email", "customer__external_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer", "store"]
    inlines = [OrderLineInline, RefundInline]
    date_hierarchy = "placed_at"
    actions = ["cancel_orders"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return super().get_queryset(request).annotate(line_total_count=Count("lines"))

    @admin.display(description="Refunded", ordering="refunded_total")
    def refunded_display(self, order: Order) -> str:
        return money_format(order.refunded_total, order.currency)

    @admin.display(description="Lines", ordering="line_total_count")
    def line_count(self, order: "WithAnnotations[Order, OrderCounts]") -> int:
        return order.line_total_count

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        # Orders are read-only history in the admin (no change form), but cancelling needs change_order.
        return request.user.has_perm("customers.change_order")

    @admin.action(description="Cancel selected orders", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done = 0
        for order in queryset.order_by("pk"):
            services.order_cancel(order=order, cause=ADMIN_CAUSE)
            done += 1
        _report(self, request, done, [], "order(s) cancelled")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "order", "amount_display", "amount_shop_display", "reason", "external_id", "created_at"]

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, refund: Refund) -> str:
        return money_format(refund.amount, refund.order.currency)

    @admin.display(description="Amount (shop currency)", ordering="amount_shop")
    def amount_shop_display(self, refund: Refund) -> str:
        return _shop_money(refund.amount_shop)

    search_fields = ["external_id", "order__external_id", "reason"]
    list_select_related = ["order"]
    autocomplete_fields = ["order"]
    date_hierarchy = "created_at"


@admin.register(DraftOrder)
class DraftOrderAdmin(ReadOnlyAdminMixin, TotalsAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "customer", "total_display", "total_shop_display", "created_at"]
    list_filter = ["currency"]
    search_fields = ["external_id", "customer__email", "customer__external_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]


@admin.register(Cart)
class CartAdmin(ReadOnlyAdminMixin, TotalsAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "customer",
        "total_display",
        "total_shop_display",
        "abandoned_at",
        "recovered_at",
        "updated_at",
    ]
    list_filter = [("abandoned_at", admin.EmptyFieldListFilter), ("recovered_at", admin.EmptyFieldListFilter)]
    search_fields = ["external_id", "customer__email", "customer__external_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]


@admin.register(CustomerEvent)
class CustomerEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "customer", "occurred_at", "external_id"]
    list_filter = ["name"]
    search_fields = ["name", "external_id", "customer__email", "customer__external_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "occurred_at"


class DomainEventReceiptInline(admin.TabularInline):
    """Which consumers (workflow engine, loyalty, ...) processed the event; a missing one is re-driven by the sweep."""

    model = DomainEventReceipt
    fields = ["consumer", "processed_at"]
    readonly_fields = ["consumer", "processed_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The outbox of trigger events: what happened, to whom, caused by what, and whether it was processed."""

    list_display = ["__str__", "name", "customer", "cause_link", "status", "created_at", "processed_at"]
    list_filter = ["status", "name"]

    @admin.display(description="Cause", ordering="cause")
    def cause_link(self, event: DomainEvent) -> str:
        """What caused the event (a run, bulk run, API token, import): a link or readable text."""
        return reference_link(event.cause)

    search_fields = ["name", "cause", "customer__email", "customer__external_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    show_full_result_count = False
    inlines = [DomainEventReceiptInline]


@admin.register(OutboxDrain)
class OutboxDrainAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """
    The outbox's drain marks (issue 12), one per consumer at most: who will claim that consumer's next events — a
    queued drain or a drain lingering — since when, and whether the mark still holds (a stale one is taken over by
    the next write). Written and cleared by the outbox alone: seen here, never edited.
    """

    list_display = ["consumer", "queued_at", "holder", "held"]
    list_filter = ["holder"]
    fields = ["consumer", "queued_at", "holder"]
    readonly_fields = ["consumer", "queued_at", "holder"]
    ordering = ["consumer"]

    @admin.display(description="Still held", boolean=True)
    def held(self, mark: OutboxDrain) -> bool:
        return outbox_drain_live(mark.queued_at, mark.holder, timezone.now())

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # the view permission itself: the change permission (which Django also accepts) edits nothing here
        return request.user.has_perm("customers.view_outboxdrain")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Exchange rates ------------------------------------------------------------------------------


class ExchangeRateForm(forms.ModelForm):
    class Meta:
        model = ExchangeRate
        fields = ["currency", "day", "rate", "source"]

    def clean_currency(self) -> str:
        try:
            code = currency_code(self.cleaned_data["currency"])
        except CurrencyError as error:
            raise ValidationError(error.message) from None
        if code == shop_currency():
            raise ValidationError(f"{code} is the shop currency: its rate is always 1.")
        return code

    def clean_rate(self) -> Any:
        try:
            return rate_clean(self.cleaned_data["rate"], path="rate")
        except CurrencyError as error:
            raise ValidationError(error.message) from None


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    """Rates per currency per day (shop-currency units per unit); amounts use the latest rate on or before their day."""

    form = ExchangeRateForm
    list_display = ["currency", "day", "rate", "shop_equivalent", "source", "updated_at"]
    list_filter = ["currency", "source"]
    search_fields = ["currency", "source"]
    date_hierarchy = "day"
    fields = ["currency", "day", "rate", "source"]

    @admin.display(description="1 unit is worth")
    def shop_equivalent(self, rate: ExchangeRate) -> str:
        return f"{rate.rate.normalize():f} {shop_currency()}"

    def save_model(self, request: HttpRequest, obj: ExchangeRate, form: Any, change: bool) -> None:
        if change and obj.pk:
            ExchangeRate.objects.filter(pk=obj.pk).exclude(currency=obj.currency, day=obj.day).delete()
        row, _ = exchange_rate_set(
            currency=obj.currency, day=obj.day, rate=obj.rate, source=obj.source or f"admin:{request.user.pk}"
        )
        obj.pk = row.pk
        obj._state.adding = False
        obj._state.db = row._state.db


from .consent import admin as consent_admin  # noqa: E402, F401  (registers suppressions and consents)
from .messaging import admin as messaging_admin  # noqa: E402, F401  (registers the Delivery admin)
