"""
Admin for the data plane. Orders, refunds and the outbox are history: they are shown read-only and
changed only through actions that call the services (so summary figures and trigger events stay right).
Tag inlines and the "add tag" action are added by `apps/tagging/admin.py` (tagging depends on customers).
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from . import services
from .models import (
    Cart,
    Customer,
    CustomerEvent,
    DomainEvent,
    DraftOrder,
    Order,
    OrderLine,
    Product,
    Refund,
    Store,
)

ADMIN_CAUSE = "admin"
RECENT_ORDERS = 20


class ReadOnlyAdminMixin:
    """History rows: browsable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, failed: list[str], verb: str) -> None:
    modeladmin.message_user(request, f"{done} {verb}.", messages.SUCCESS)
    if failed:
        modeladmin.message_user(request, f"{len(failed)} skipped: " + "; ".join(failed[:10]), messages.WARNING)


# --- Customers -------------------------------------------------------------------------------------


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "external_id",
        "email",
        "country",
        "state",
        "accepts_marketing",
        "orders_count",
        "total_spent",
        "last_order_at",
    ]
    list_filter = ["state", "accepts_marketing", "country", "preferred_currency"]
    search_fields = ["external_id", "email", "first_name", "last_name", "phone"]
    readonly_fields = [
        "recent_orders",
        "state",
        "unsubscribed_at",
        "orders_count",
        "total_spent",
        "refunded_total",
        "first_order_at",
        "last_order_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["external_id", "email", "phone", "first_name", "last_name", "birthday"]}),
        ("Locale", {"fields": ["country", "preferred_currency"]}),
        ("State and consent", {"fields": ["state", "accepts_marketing", "unsubscribed_at"]}),
        ("Custom metadata", {"fields": ["attributes"]}),
        (
            "Summary figures (kept current by the order services)",
            {"fields": ["orders_count", "total_spent", "refunded_total", "first_order_at", "last_order_at"]},
        ),
        ("Recent orders", {"fields": ["recent_orders"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["activate_customers", "unsubscribe_customers"]
    date_hierarchy = "created_at"
    show_full_result_count = False

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
            "<tr><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:customers_order_change", args=[order.pk]),
                    order,
                    date_format(order.placed_at, "DATETIME_FORMAT"),
                    order.get_channel_display(),
                    order.get_status_display(),
                    order.total,
                    order.currency,
                    order.refunded_total,
                )
                for order in orders
            ),
        )
        all_orders = reverse("admin:customers_order_changelist") + f"?customer__id__exact={customer.pk}"
        return format_html(
            "<table><thead><tr><th>Order</th><th>Placed</th><th>Channel</th><th>Status</th><th>Total</th>"
            "<th>Refunded</th></tr></thead><tbody>{}</tbody></table><p><a href='{}'>All {} orders</a></p>",
            rows,
            all_orders,
            customer.orders_count,
        )

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.CUSTOMER_FIELDS if name in form.cleaned_data}
        if change:
            services.customer_update(customer=obj, **fields)
            return
        created = services.customer_create(
            external_id=form.cleaned_data.get("external_id"), cause=ADMIN_CAUSE, **fields
        )
        # The admin goes on to save inlines against `obj`: make it the row the service created.
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db

    @admin.action(description="Activate selected customers")
    def activate_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        done, failed = 0, []
        for customer in queryset.order_by("pk"):
            try:
                services.customer_activate(customer=customer, cause=ADMIN_CAUSE)
                done += 1
            except ValidationError as error:
                failed.append(f"{customer}: {' '.join(error.messages)}")
        _report(self, request, done, failed, "customer(s) activated")

    @admin.action(description="Unsubscribe selected customers from marketing")
    def unsubscribe_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        done = 0
        for customer in queryset.order_by("pk"):
            services.customer_unsubscribe(customer=customer, cause=ADMIN_CAUSE)
            done += 1
        _report(self, request, done, [], "customer(s) unsubscribed")


# --- Products and stores --------------------------------------------------------------------------


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "sku", "external_id", "price", "lines_sold", "created_at"]
    search_fields = ["title", "sku", "external_id"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).annotate(lines_sold_count=Count("order_lines"))

    @admin.display(description="Order lines", ordering="lines_sold_count")
    def lines_sold(self, product: Product) -> int:
        return product.lines_sold_count


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "latitude", "longitude", "radius_m", "is_active", "orders_total"]
    list_filter = ["is_active"]
    search_fields = ["name", "code", "address"]
    prepopulated_fields = {"code": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Store]:
        return super().get_queryset(request).annotate(orders_total_count=Count("orders"))

    @admin.display(description="POS orders", ordering="orders_total_count")
    def orders_total(self, store: Store) -> int:
        return store.orders_total_count


# --- Orders ----------------------------------------------------------------------------------------


class OrderLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderLine
    fields = ["product", "title", "quantity", "unit_price", "total"]
    readonly_fields = fields
    extra = 0
    max_num = 0

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = ["external_id", "amount", "reason", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "customer",
        "channel",
        "status",
        "currency",
        "total",
        "refunded_total",
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

    @admin.display(description="Lines", ordering="line_total_count")
    def line_count(self, order: Order) -> int:
        return order.line_total_count

    @admin.action(description="Cancel selected orders", permissions=["view"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done = 0
        for order in queryset.order_by("pk"):
            services.order_cancel(order=order, cause=ADMIN_CAUSE)
            done += 1
        _report(self, request, done, [], "order(s) cancelled")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "order", "amount", "reason", "external_id", "created_at"]
    search_fields = ["external_id", "order__external_id", "reason"]
    list_select_related = ["order"]
    autocomplete_fields = ["order"]
    date_hierarchy = "created_at"


@admin.register(DraftOrder)
class DraftOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "customer", "currency", "total", "created_at"]
    list_filter = ["currency"]
    search_fields = ["external_id", "customer__email", "customer__external_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]


@admin.register(Cart)
class CartAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "customer", "currency", "total", "abandoned_at", "recovered_at", "updated_at"]
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


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The outbox of trigger events: what happened, to whom, caused by what, and whether it was processed."""

    list_display = ["__str__", "name", "customer", "cause", "status", "created_at", "processed_at"]
    list_filter = ["status", "name"]
    search_fields = ["name", "cause", "customer__email", "customer__external_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    show_full_result_count = False
