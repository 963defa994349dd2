"""
The customer, order, line, cart, draft order, event, store and location fields of the condition
language (imported by CustomersConfig.ready).

Customer figures read the summary columns kept by the order services (indexed), or with a window
the non-cancelled orders placed in the last N days (a `Figure`: one indexed query for one customer, one
grouped query for a batch, `GROUP BY … HAVING` / anti-join for an audience).
Order, line, cart, event, store and location fields are read in memory only (one event).
"""

from datetime import timedelta
from decimal import Decimal

from django.db import models as db
from django.db.models import lookups
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from apps.customers.choices import CustomerState, OrderChannel, OrderStatus
from apps.customers.models import Order
from loyalty_site.lib.conditions import catalog, figures


def _window_days(window: dict | None) -> int | None:
    return int(window["days"]) if isinstance(window, dict) and window.get("days") else None


def _customer_attr(attr: str):
    def read(context, **kwargs):
        return getattr(context.customer, attr) if context.customer is not None else None

    return read


def _column(attr: str):
    def compile_column(**kwargs):
        return db.F(attr)

    return compile_column


def _orders_window(now, window):
    days = _window_days(window)
    if days is None:
        return None
    return Order.objects.filter(placed_at__gte=now - timedelta(days=days)).exclude(status=OrderStatus.CANCELLED)


def _rows_key(now, window):
    return ("customers.orders_in_window", now, _window_days(window))


def _figure_orders_count(*, now, window=None, **kwargs):
    """With a window: the non-cancelled orders placed in the last N days (no window: the summary column)."""
    rows = _orders_window(now, window)
    if rows is None:
        return None
    return figures.Figure(
        rows=rows, customer="customer_id", value=db.Count("pk"), zero=0, kind="count", rows_key=_rows_key(now, window)
    )


def _figure_total_spent(*, now, window=None, **kwargs):
    """With a window: the shop-currency net (totals minus refunds) of those orders; never adds currencies."""
    rows = _orders_window(now, window)
    if rows is None:
        return None
    money = db.DecimalField(max_digits=14, decimal_places=2)
    net = Coalesce(db.Sum(db.F("total_shop") - db.F("refunded_total_shop"), output_field=money), Decimal("0"))
    return figures.Figure(
        rows=rows, customer="customer_id", value=net, zero=Decimal("0"), rows_key=_rows_key(now, window)
    )


def _read_days_since_last_order(context, **kwargs):
    last = context.customer.last_order_at if context.customer is not None else None
    return None if last is None else (context.now - last).days


def _compile_days_since_last_order(*, now, op, value, **kwargs):
    # floor((now - last) / 1 day) compared with N is a range on last_order_at (indexed):
    # days >= N  <=>  last <= now - N days.
    column = db.F("last_order_at")
    present = db.Q(lookups.IsNull(column, False))
    if op == "is_set":
        return present
    if op == "is_not_set":
        return ~present

    def at_least(days):  # days_since >= days
        return db.Q(lookups.LessThanOrEqual(column, now - timedelta(days=days)))

    def equal(days):
        return at_least(days) & ~at_least(days + 1)

    if op in ("in", "not_in"):
        matched = db.Q(pk__in=[])
        for item in value:
            matched |= equal(int(item))
        return present & (matched if op == "in" else ~matched)
    days = int(value)
    by_op = {
        "eq": equal(days),
        "ne": ~equal(days),
        "gte": at_least(days),
        "gt": at_least(days + 1),
        "lt": ~at_least(days),
        "lte": ~at_least(days + 1),
    }
    return present & by_op[op]


def _read_currencies(context, **kwargs):
    if context.customer is None:
        return []

    def compute():
        rows = Order.objects.filter(customer_id=context.customer.pk).exclude(status=OrderStatus.CANCELLED)
        return sorted(set(rows.values_list("currency", flat=True)))

    return context.cached("customer.currencies", compute)


def _currencies_items(*, now, **kwargs):
    rows = Order.objects.filter(customer_id=db.OuterRef("pk")).exclude(status=OrderStatus.CANCELLED)
    return rows, db.F("currency")


def _read_attribute(context, key, **kwargs):
    if context.customer is None:
        return None
    value = (context.customer.attributes or {}).get(key)
    return None if value is None or isinstance(value, (dict, list)) else value


def _compile_attribute(*, key, **kwargs):
    return KeyTextTransform(key, "attributes")


def _obj(scope: str, attr: str):
    def read(context, **kwargs):
        target = getattr(context, scope)
        return getattr(target, attr, None) if target is not None else None

    return read


def _line_value(attr: str):
    # Order lines are OrderLine rows; cart and draft lines are dicts with the same keys.
    def read(context, **kwargs):
        line = context.line
        if line is None:
            return None
        return line.get(attr) if isinstance(line, dict) else getattr(line, attr, None)

    return read


def _read_order_lines(context, **kwargs):
    order = context.order
    if order is None or order.pk is None:
        return []
    return context.cached(("order.lines", order.pk), lambda: list(order.lines.select_related("product")))


def _read_json_lines(scope: str):
    def read(context, **kwargs):
        target = getattr(context, scope)
        lines = getattr(target, "lines", None) if target is not None else None
        return [line for line in lines or [] if isinstance(line, dict)]

    return read


def _read_event_property(context, key, **kwargs):
    event = context.custom_event
    value = (event.properties or {}).get(key) if event is not None else None
    return None if isinstance(value, (dict, list)) else value


def _read_location_distance(context, **kwargs):
    location = context.location or {}
    return location.get("distance_m")


# --- What changes a field (state tags re-evaluate a customer on these events, and as time passes) -------

ORDER_EVENTS = ("order.created", "order.cancelled", "order.refunded", "order.updated")
PROFILE_EVENTS = ("customer.registered", "customer.activated", "customer.updated")
# A relative date compares with the local calendar day in places (eq on a date-time): a margin of two days
# around the moving boundary keeps every customer whose answer can have changed among the candidates.
_MARGIN = timedelta(days=2)


def _relative_offsets(value) -> list[timedelta]:
    """The offsets from now of the relative dates in a value ({"days_ago": 30} -> -30 days); [] if none."""
    items = value if isinstance(value, list) else [value]
    offsets = []
    for item in items:
        if isinstance(item, dict) and "days_ago" in item:
            offsets.append(-timedelta(days=int(item["days_ago"])))
        elif isinstance(item, dict) and "days_from_now" in item:
            offsets.append(timedelta(days=int(item["days_from_now"])))
    return offsets


def _relative_date_moves(column: str):
    """Customers whose `column` lies where a relative date's boundary passed between `since` and `now`."""

    def moves(*, since, now, value=None, **kwargs):
        offsets = _relative_offsets(value)
        if not offsets:
            return None
        passed = db.Q(pk__in=[])
        for offset in offsets:
            passed |= db.Q(**{f"{column}__gte": since + offset - _MARGIN, f"{column}__lte": now + offset + _MARGIN})
        return passed

    return moves


def _window_moves(*, since, now, window=None, **kwargs):
    """Customers with a counted order that left an N-day window between `since` and `now` (one index range)."""
    days = _window_days(window)
    if days is None:
        return None
    left = Order.objects.filter(
        placed_at__gte=since - timedelta(days=days), placed_at__lt=now - timedelta(days=days)
    ).exclude(status=OrderStatus.CANCELLED)
    return db.Q(pk__in=left.values("customer_id"))


def _days_since_last_order_moves(*, since, now, op=None, value=None, **kwargs):
    if op in ("is_set", "is_not_set"):
        return None
    days = [int(item) for item in (value if isinstance(value, list) else [value]) if item is not None]
    if not days:
        return None
    # "days since" crosses N (and N+1) when last_order_at passes now - N days.
    low, high = min(days), max(days) + 1
    return db.Q(
        last_order_at__gte=since - timedelta(days=high) - _MARGIN,
        last_order_at__lte=now - timedelta(days=low) + _MARGIN,
    )


_COUNTRY = "countries"
_CUSTOMER_FIELDS = [
    catalog.FieldSpec(
        name="customer.email",
        type="text",
        label="E-mail",
        scope="customer",
        read=_customer_attr("email"),
        compile=_column("email"),
        example="ana@example.com",
        changed_by=PROFILE_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.first_name",
        type="text",
        label="First name",
        scope="customer",
        read=_customer_attr("first_name"),
        compile=_column("first_name"),
        example="Ana",
        changed_by=PROFILE_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.last_name",
        type="text",
        label="Last name",
        scope="customer",
        read=_customer_attr("last_name"),
        compile=_column("last_name"),
        example="Nguyen",
        changed_by=PROFILE_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.country",
        type="text",
        label="Country",
        scope="customer",
        suggest=_COUNTRY,
        description="ISO 3166-1 alpha-2 code.",
        read=_customer_attr("country"),
        compile=_column("country"),
        example="VN",
        changed_by=PROFILE_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.preferred_currency",
        type="text",
        label="Preferred currency",
        scope="customer",
        suggest="currencies",
        read=_customer_attr("preferred_currency"),
        compile=_column("preferred_currency"),
        example="EUR",
        changed_by=PROFILE_EVENTS + ORDER_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.state",
        type="choice",
        label="Account state",
        scope="customer",
        choices=tuple(CustomerState.choices),
        read=_customer_attr("state"),
        compile=_column("state"),
        example="registered",
        changed_by=PROFILE_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.accepts_marketing",
        type="boolean",
        label="Accepts marketing",
        scope="customer",
        read=_customer_attr("accepts_marketing"),
        compile=_column("accepts_marketing"),
        example=True,
        changed_by=(*PROFILE_EVENTS, "customer.unsubscribed"),
    ),
    catalog.FieldSpec(
        name="customer.created_at",
        type="datetime",
        label="Registered at",
        scope="customer",
        read=_customer_attr("created_at"),
        compile=_column("created_at"),
        example={"days_ago": 30},
        changed_by=("customer.registered",),
        moves_with_time=_relative_date_moves("created_at"),
    ),
    catalog.FieldSpec(
        name="customer.birthday",
        type="date",
        label="Birthday",
        scope="customer",
        read=_customer_attr("birthday"),
        compile=_column("birthday"),
        example="1990-05-17",
        changed_by=PROFILE_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.attributes.*",
        type="text",
        label="Custom attribute",
        scope="customer",
        description="A key of the customer's custom attributes, e.g. customer.attributes.weather_zone.",
        read=_read_attribute,
        compile=_compile_attribute,
        example="north",
        changed_by=PROFILE_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.orders_count",
        type="integer",
        label="Number of orders",
        scope="customer",
        description="Orders placed, cancelled ones excluded; with a window, only those placed in the last N days.",
        read=_customer_attr("orders_count"),
        compile=_column("orders_count"),
        figure=_figure_orders_count,
        supports_window=True,
        example=3,
        changed_by=ORDER_EVENTS,
        moves_with_time=_window_moves,
    ),
    catalog.FieldSpec(
        name="customer.total_spent",
        type="money",
        label="Total spent",
        scope="customer",
        # In the shop currency (each order converted at its own rate); the builder shows the currency.
        description="Net of refunds and cancellations; with a window, orders placed in the last N days.",
        read=_customer_attr("total_spent"),
        compile=_column("total_spent"),
        figure=_figure_total_spent,
        supports_window=True,
        example=500,
        changed_by=ORDER_EVENTS,
        moves_with_time=_window_moves,
    ),
    catalog.FieldSpec(
        name="customer.refunded_total",
        type="money",
        label="Total refunded",
        scope="customer",
        description="In the shop currency.",
        read=_customer_attr("refunded_total"),
        compile=_column("refunded_total"),
        example=20,
        changed_by=ORDER_EVENTS,
    ),
    catalog.FieldSpec(
        name="customer.last_order_at",
        type="datetime",
        label="Last order at",
        scope="customer",
        read=_customer_attr("last_order_at"),
        compile=_column("last_order_at"),
        example={"days_ago": 30},
        changed_by=ORDER_EVENTS,
        moves_with_time=_relative_date_moves("last_order_at"),
    ),
    catalog.FieldSpec(
        name="customer.first_order_at",
        type="datetime",
        label="First order at",
        scope="customer",
        read=_customer_attr("first_order_at"),
        compile=_column("first_order_at"),
        example={"days_ago": 365},
        changed_by=ORDER_EVENTS,
        moves_with_time=_relative_date_moves("first_order_at"),
    ),
    catalog.FieldSpec(
        name="customer.days_since_last_order",
        type="integer",
        label="Days since last order",
        scope="customer",
        description="Whole days since the last non-cancelled order; not set without orders.",
        read=_read_days_since_last_order,
        compile=_compile_days_since_last_order,
        example=30,
        changed_by=ORDER_EVENTS,
        moves_with_time=_days_since_last_order_moves,
    ),
    catalog.FieldSpec(
        name="customer.currencies",
        type="tags",
        label="Currencies ordered in",
        scope="customer",
        suggest="currencies",
        description="Currencies of the customer's non-cancelled orders.",
        read=_read_currencies,
        items=_currencies_items,
        example="EUR",
        changed_by=ORDER_EVENTS,
    ),
]
_EVENT_FIELDS = [
    catalog.FieldSpec(
        name="order.total",
        type="money",
        label="Order total",
        scope="order",
        description="In the order's own currency (order.currency); order.total_shop is the same in the shop currency.",
        read=_obj("order", "total"),
        example=120,
    ),
    catalog.FieldSpec(
        name="order.total_shop",
        type="money",
        label="Order total (shop currency)",
        scope="order",
        description="The order total converted to the shop currency at the rate stored on the order.",
        read=_obj("order", "total_shop"),
        example=120,
    ),
    catalog.FieldSpec(
        name="order.subtotal",
        type="money",
        label="Order subtotal",
        scope="order",
        description="In the order's own currency (order.currency).",
        read=_obj("order", "subtotal"),
        example=100,
    ),
    catalog.FieldSpec(
        name="order.currency",
        type="text",
        label="Order currency",
        scope="order",
        suggest="currencies",
        read=_obj("order", "currency"),
        example="USD",
    ),
    catalog.FieldSpec(
        name="order.channel",
        type="choice",
        label="Order channel",
        scope="order",
        choices=tuple(OrderChannel.choices),
        read=_obj("order", "channel"),
        example="pos",
    ),
    catalog.FieldSpec(
        name="order.shipping_country",
        type="text",
        label="Shipping country",
        scope="order",
        suggest=_COUNTRY,
        read=_obj("order", "shipping_country"),
        example="DE",
    ),
    catalog.FieldSpec(
        name="order.status",
        type="choice",
        label="Order status",
        scope="order",
        choices=tuple(OrderStatus.choices),
        read=_obj("order", "status"),
        example="paid",
    ),
    catalog.FieldSpec(
        name="order.placed_at",
        type="datetime",
        label="Order placed at",
        scope="order",
        read=_obj("order", "placed_at"),
        example={"days_ago": 1},
    ),
    catalog.FieldSpec(
        name="order.lines", type="list", label="Order lines", scope="order", item_scope="line", read=_read_order_lines
    ),
    catalog.FieldSpec(
        name="line.title",
        type="text",
        label="Line title",
        scope="line",
        suggest="products",
        read=_line_value("title"),
        example="Summer dress for her",
    ),
    catalog.FieldSpec(
        name="line.quantity",
        type="integer",
        label="Line quantity",
        scope="line",
        read=_line_value("quantity"),
        example=2,
    ),
    catalog.FieldSpec(
        name="line.unit_price",
        type="money",
        label="Line unit price",
        scope="line",
        read=_line_value("unit_price"),
        example=25,
    ),
    catalog.FieldSpec(
        name="product.title",
        type="text",
        label="Product title",
        scope="product",
        suggest="products",
        read=_obj("product", "title"),
        example="Baby stroller",
    ),
    catalog.FieldSpec(
        name="cart.total",
        type="money",
        label="Cart total",
        scope="cart",
        description="In the cart's own currency; cart.total_shop is the same in the shop currency.",
        read=_obj("cart", "total"),
        example=80,
    ),
    catalog.FieldSpec(
        name="cart.total_shop",
        type="money",
        label="Cart total (shop currency)",
        scope="cart",
        read=_obj("cart", "total_shop"),
        example=80,
    ),
    catalog.FieldSpec(
        name="cart.lines",
        type="list",
        label="Cart lines",
        scope="cart",
        item_scope="line",
        read=_read_json_lines("cart"),
    ),
    catalog.FieldSpec(
        name="draft_order.total",
        type="money",
        label="Draft order total",
        scope="draft_order",
        description="In the draft order's own currency; draft_order.total_shop is the same in the shop currency.",
        read=_obj("draft_order", "total"),
        example=300,
    ),
    catalog.FieldSpec(
        name="draft_order.total_shop",
        type="money",
        label="Draft order total (shop currency)",
        scope="draft_order",
        read=_obj("draft_order", "total_shop"),
        example=300,
    ),
    catalog.FieldSpec(
        name="draft_order.lines",
        type="list",
        label="Draft order lines",
        scope="draft_order",
        item_scope="line",
        read=_read_json_lines("draft_order"),
    ),
    catalog.FieldSpec(
        name="event.name",
        type="text",
        label="Event name",
        scope="event",
        suggest="event_names",
        read=_obj("custom_event", "name"),
        example="newsletter_signup",
    ),
    catalog.FieldSpec(
        name="event.properties.*",
        type="text",
        label="Event property",
        scope="event",
        description="A key of the custom event's properties, e.g. event.properties.source.",
        read=_read_event_property,
        example="footer",
    ),
    catalog.FieldSpec(
        name="store.name",
        type="text",
        label="Store name",
        scope="store",
        read=_obj("store", "name"),
        example="Downtown",
    ),
    catalog.FieldSpec(
        name="store.code",
        type="text",
        label="Store code",
        scope="store",
        read=_obj("store", "code"),
        example="downtown",
    ),
    catalog.FieldSpec(
        name="location.distance_m",
        type="number",
        label="Distance to the store (m)",
        scope="location",
        read=_read_location_distance,
        example=120,
    ),
]
for _spec in _CUSTOMER_FIELDS + _EVENT_FIELDS:
    catalog.register_field(_spec)
