"""
Input and output serializers of the data-plane API. Input serializers only validate shape; the
services do the writes. Output serializers read prefetched relations only (see `selectors.py`).
"""

import functools
from decimal import Decimal
from typing import Any, Final, TypedDict

from rest_framework import serializers

from loyalty_site.lib.api.output import FieldsBuiltOnceMixin
from loyalty_site.lib.api.ranges import BoundedInputMixin
from loyalty_site.lib.hot_queries import FirstCompiled
from loyalty_site.lib.money import decimals_error, shop_currency
from loyalty_site.lib.timezones import UNKNOWN as UNKNOWN_TIME_ZONE
from loyalty_site.lib.timezones import time_zone_canonical

from ..choices import CustomerState, CustomerStatus, OrderChannel
from ..consent.api.serializers import ConsentListField, ConsentSerializer
from ..models import Cart, Customer, CustomerEvent, DraftOrder, Order, OrderLine, Product, Refund, Store

MAX_LINES = 500


class MoneyDigits(TypedDict):
    """The digits of a money amount, as keyword arguments of a `DecimalField` (typed, so `**MONEY` checks)."""

    max_digits: int
    decimal_places: int


MONEY: Final[MoneyDigits] = {"max_digits": 14, "decimal_places": 2}


# --- Output --------------------------------------------------------------------------------------


class CustomerSerializer(serializers.ModelSerializer):
    # (a plain string in the schema: an unknown e-mail is "", which is no "format: email")
    email = serializers.CharField(read_only=True, help_text="E-mail address, or empty")
    tags = serializers.SerializerMethodField(help_text="Tag names, alphabetical")
    consents = ConsentSerializer(
        many=True,
        read_only=True,
        help_text="Recorded consents per channel and purpose. A customer without an e-mail marketing row "
        "follows `accepts_marketing` (the mirror of that consent).",
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "country",
            "language",
            "time_zone",
            "preferred_currency",
            "preferred_currency_set_by_integrator",
            "birthday",
            "state",
            "status",
            "status_reason",
            "accepts_marketing",
            "unsubscribed_at",
            "consents",
            "attributes",
            "tags",
            "orders_count",
            "total_spent",
            "refunded_total",
            "first_order_at",
            "last_order_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_tags(self, customer: Customer) -> list[str]:
        return sorted(row.tag.name for row in customer.customer_tags.all())


class ProductSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "external_id", "title", "sku", "price", "tags", "created_at", "updated_at"]
        read_only_fields = fields

    def get_tags(self, product: Product) -> list[str]:
        return sorted(row.tag.name for row in product.product_tags.all())


class OrderLineSerializer(serializers.ModelSerializer):
    product_external_id = serializers.CharField(
        source="product.external_id", default=None, allow_null=True, read_only=True
    )

    class Meta:
        model = OrderLine
        fields = ["id", "product_id", "product_external_id", "title", "quantity", "unit_price", "total"]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "external_id", "order_id", "amount", "amount_shop", "reason", "created_at"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="customer.external_id", allow_null=True, read_only=True)
    store_code = serializers.CharField(source="store.code", default=None, allow_null=True, read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "external_id",
            "customer_id",
            "customer_external_id",
            "currency",
            "subtotal",
            "discount_total",
            "shipping_total",
            "tax_total",
            "total",
            "refunded_total",
            "shop_currency",
            "exchange_rate",
            "subtotal_shop",
            "discount_total_shop",
            "shipping_total_shop",
            "tax_total_shop",
            "total_shop",
            "refunded_total_shop",
            "channel",
            "shipping_country",
            "checkout_session",
            "discount_codes",
            "status",
            "store_code",
            "placed_at",
            "cancelled_at",
            "lines",
            "refunds",
            "created_at",
        ]
        read_only_fields = fields


class DraftOrderSerializer(serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="customer.external_id", allow_null=True, read_only=True)

    class Meta:
        model = DraftOrder
        fields = [
            "id",
            "external_id",
            "customer_id",
            "customer_external_id",
            "currency",
            "total",
            "shop_currency",
            "exchange_rate",
            "total_shop",
            "lines",
            "created_at",
        ]
        read_only_fields = fields


class CartSerializer(serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="customer.external_id", allow_null=True, read_only=True)
    checkout_url = serializers.CharField(read_only=True, help_text="The checkout's URL, or empty")

    class Meta:
        model = Cart
        fields = [
            "id",
            "external_id",
            "customer_id",
            "customer_external_id",
            "currency",
            "total",
            "shop_currency",
            "exchange_rate",
            "total_shop",
            "lines",
            "checkout_url",
            "abandoned_at",
            "recovered_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CustomerEventSerializer(FieldsBuiltOnceMixin, serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="customer.external_id", allow_null=True, read_only=True)

    class Meta:
        model = CustomerEvent
        fields = ["id", "external_id", "customer_id", "customer_external_id", "name", "properties", "occurred_at"]
        read_only_fields = fields


# (the field CustomerEventSerializer maps `occurred_at` to: ISO 8601 in the current time zone, UTC as "Z")
_OCCURRED_AT = serializers.DateTimeField(read_only=True)


def custom_event_json(event: CustomerEvent) -> dict[str, Any]:
    """`CustomerEventSerializer(event).data`, the same values written directly (the answer of every event POST)."""
    return {
        "id": event.id,
        "external_id": event.external_id,
        "customer_id": event.customer_id,
        "customer_external_id": event.customer.external_id,
        "name": event.name,
        "properties": event.properties,
        "occurred_at": _OCCURRED_AT.to_representation(event.occurred_at),
    }


class StoreSerializer(BoundedInputMixin, serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "code", "name", "address", "latitude", "longitude", "radius_m", "is_active"]
        extra_kwargs = {
            "latitude": {"min_value": -90, "max_value": 90},
            "longitude": {"min_value": -180, "max_value": 180},
            "radius_m": {"min_value": 1, "max_value": 5000},
        }


# --- Input ---------------------------------------------------------------------------------------


class CustomerInputSerializer(BoundedInputMixin, serializers.Serializer):
    """Profile fields accepted on create/update (and embedded in orders, carts, events)."""

    external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, min_length=2, required=False, allow_blank=True)
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
        max_length=16,
        required=False,
        allow_blank=True,
        help_text='BCP 47 language tag ("en", "pt-BR"): chooses the locale of message templates.',
    )
    time_zone = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="IANA time zone (Europe/Paris, America/New_York; any letter case, stored as the tz database "
        "spells it): quiet hours of messages are in the customer's local time. Empty: the sending policy's default.",
    )
    preferred_currency = serializers.CharField(
        max_length=3,
        min_length=3,
        required=False,
        allow_blank=True,
        help_text="Sets the preferred currency (orders no longer change it); empty: derived from the orders again.",
    )
    state = serializers.ChoiceField(
        choices=CustomerState.choices,
        required=False,
        help_text="Account state: guest (a guest checkout), invited, registered (default for a new customer), "
        "disabled. A guest or invited customer becoming registered sends customer.activated (a guest also "
        "customer.registered).",
    )
    birthday = serializers.DateField(required=False, allow_null=True)
    accepts_marketing = serializers.BooleanField(
        required=False,
        help_text="E-mail marketing consent (kept for compatibility; `consents` says more): true grants, false "
        "withdraws a given consent (customer.unsubscribed).",
    )
    consents = ConsentListField(
        help_text="Consents to record: [{channel, purpose, status, source}]; status `pending` sends a double "
        "opt-in link."
    )
    attributes = serializers.JSONField(required=False)

    def validate_time_zone(self, value: str) -> str:
        if not value:
            return ""
        name = time_zone_canonical(value)
        if name is None:
            raise serializers.ValidationError(UNKNOWN_TIME_ZONE.format(value=value))
        return name

    def validate_attributes(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class CustomerCreateInputSerializer(CustomerInputSerializer):
    """
    POST /customers/: the profile plus where the sign-up came from (fraud velocity checks). Sent by the shop's
    server, so the IP is the visitor's, taken from the body (never the caller's address). Recorded on a new
    customer only: an upsert of an existing customer leaves its sign-up facts alone.
    """

    signup_ip = serializers.IPAddressField(
        required=False, allow_null=True, help_text="The visitor's IP address at sign-up (fraud checks)"
    )
    signup_device = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The visitor's device identifier at sign-up, at most 64 characters (fraud checks)",
    )


class CustomerStatusInputSerializer(BoundedInputMixin, serializers.Serializer):
    """A fraud status change: the new status and why."""

    status = serializers.ChoiceField(choices=CustomerStatus.choices)
    reason = serializers.CharField(max_length=255)


class EmbeddedCustomerSerializer(CustomerInputSerializer):
    external_id = serializers.CharField(max_length=128)
    consents = None  # type: ignore[assignment]  # consents go to the customers endpoint, not embedded copies


# The look-up of every single-event POST (the key is unique): compiled once, run with the id given.
_customer_by_external_id = FirstCompiled(lambda external_id: Customer.objects.filter(external_id=external_id), arity=1)


class CustomerReferenceSerializer(BoundedInputMixin, serializers.Serializer):
    """Exactly one of: an embedded `customer` (upserted by external_id), `customer_external_id`, `customer_id`."""

    customer = EmbeddedCustomerSerializer(required=False)
    customer_external_id = serializers.CharField(max_length=128, required=False)
    customer_id = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        given = [name for name in ("customer", "customer_external_id", "customer_id") if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"customer": "Give exactly one of customer, customer_external_id, customer_id."}
            )
        # The row read here is handed to `customer_resolve` (`customer_kwargs`): one SELECT per request.
        self.known_customer: Customer | None = None
        if self.context.get("customer_lookup") is False:
            return attrs  # a batch resolves every item's customer in one query (views.events_batch_run)
        if "customer_id" in attrs:
            self.known_customer = Customer.objects.filter(pk=attrs["customer_id"]).first()
            if self.known_customer is None:
                raise serializers.ValidationError({"customer_id": f"No customer with id {attrs['customer_id']}."})
        if "customer_external_id" in attrs:
            self.known_customer = _customer_by_external_id(attrs["customer_external_id"])
            if self.known_customer is None:
                raise serializers.ValidationError(
                    {"customer_external_id": f"No customer with external id {attrs['customer_external_id']!r}."}
                )
        return attrs

    def customer_kwargs(self) -> dict[str, Any]:
        """Arguments for `customer_resolve`."""
        data = self.validated_data
        return {
            "customer_id": data.get("customer_id"),
            "customer_external_id": data.get("customer_external_id"),
            "customer_fields": dict(data["customer"]) if data.get("customer") else None,
            "known": getattr(self, "known_customer", None),
        }


class LineInputSerializer(BoundedInputMixin, serializers.Serializer):
    """An order/cart line; the product may be referenced by `product_external_id` or `product_id`."""

    product_external_id = serializers.CharField(max_length=128, required=False)
    product_id = serializers.IntegerField(required=False, min_value=1)
    title = serializers.CharField(max_length=255, required=False)
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)
    unit_price = serializers.DecimalField(min_value=Decimal("0"), **MONEY)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        product = None
        if attrs.get("product_external_id"):
            product = Product.objects.filter(external_id=attrs["product_external_id"]).first()
            if product is None:
                raise serializers.ValidationError({"product_external_id": "No product with this external id."})
        elif attrs.get("product_id"):
            product = Product.objects.filter(pk=attrs["product_id"]).first()
            if product is None:
                raise serializers.ValidationError({"product_id": "No product with this id."})
        if not attrs.get("title"):
            if product is None:
                raise serializers.ValidationError({"title": "A line without a product needs a title."})
            attrs["title"] = product.title
        attrs["product"] = product
        return attrs


def lines_as_json(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated lines in the JSON form stored on drafts and carts."""
    return [
        {
            "product_id": line["product"].pk if line.get("product") else None,
            "title": line["title"],
            "quantity": line["quantity"],
            "unit_price": str(line["unit_price"]),
        }
        for line in lines
    ]


class ShopMoneyInputMixin(serializers.Serializer):
    """
    Optional shop-currency figures sent with a record in another currency: the shop-currency total
    (the rate is then total_shop / total) and/or the exchange rate (shop units per unit of `currency`).
    Without them the exchange-rate table's rate of the record's day is used.
    """

    exchange_rate = serializers.DecimalField(
        max_digits=24,
        decimal_places=12,
        required=False,
        allow_null=True,
        help_text="Shop-currency units for one unit of `currency` (1 EUR = 1.08 USD → 1.08)",
    )
    total_shop = serializers.DecimalField(
        min_value=Decimal("0"), required=False, allow_null=True, help_text="The total in the shop currency", **MONEY
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        errors = money_decimals_errors(attrs, currency=attrs.get("currency"), fields=self.fields)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def money_decimals_errors(attrs: dict[str, Any], *, currency: Any, fields: Any) -> dict[str, str]:
    """
    Amounts with more decimals than their currency has (JPY 10.5, USD 1.005) by path — the record's own
    amounts and its lines' `unit_price` against `currency`, `total_shop` against the shop currency — instead of
    rounding them silently.
    """
    errors: dict[str, str] = {}
    if currency:
        for name, field in fields.items():
            if not isinstance(field, serializers.DecimalField) or name in ("exchange_rate", "total_shop"):
                continue
            if attrs.get(name) is not None and (problem := decimals_error(attrs[name], str(currency))):
                errors[name] = problem
        for index, line in enumerate(attrs.get("lines") or []):
            price = line.get("unit_price") if isinstance(line, dict) else None
            if price is not None and (problem := decimals_error(price, str(currency))):
                errors[f"lines[{index}].unit_price"] = problem
    if attrs.get("total_shop") is not None and (problem := decimals_error(attrs["total_shop"], shop_currency())):
        errors["total_shop"] = problem
    return errors


class OrderCreateSerializer(ShopMoneyInputMixin, CustomerReferenceSerializer):
    external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    currency = serializers.CharField(min_length=3, max_length=3)
    channel = serializers.ChoiceField(choices=OrderChannel.choices, default=OrderChannel.ONLINE)
    shipping_country = serializers.CharField(max_length=2, required=False, allow_blank=True, default="")
    store_code = serializers.SlugField(max_length=64, required=False)
    discount_total = serializers.DecimalField(min_value=Decimal("0"), default=Decimal("0"), **MONEY)
    shipping_total = serializers.DecimalField(min_value=Decimal("0"), default=Decimal("0"), **MONEY)
    tax_total = serializers.DecimalField(min_value=Decimal("0"), default=Decimal("0"), **MONEY)
    total = serializers.DecimalField(min_value=Decimal("0"), required=False, **MONEY)
    placed_at = serializers.DateTimeField(required=False, help_text="Creation time in the source system")
    checkout_session = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        help_text="The session the promotions API reserved/redeemed under: links the redemption to this order",
    )
    discount_codes = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=20,
        help_text="Promotion codes used on the order: links the customer's redemption of them to this order",
    )
    lines = LineInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)  # type: ignore[call-arg]  # stub gap: many=True hands max_length to ListSerializer

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs.get("store_code"):
            store = Store.objects.filter(code=attrs["store_code"]).first()
            if store is None:
                raise serializers.ValidationError({"store_code": "No store with this code."})
            attrs["store"] = store
        return attrs


class DraftOrderCreateSerializer(ShopMoneyInputMixin, CustomerReferenceSerializer):
    external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    currency = serializers.CharField(min_length=3, max_length=3)
    total = serializers.DecimalField(min_value=Decimal("0"), required=False, **MONEY)
    lines = LineInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)  # type: ignore[call-arg]  # stub gap: many=True hands max_length to ListSerializer


class CartUpsertSerializer(ShopMoneyInputMixin, CustomerReferenceSerializer):
    external_id = serializers.CharField(max_length=128, help_text="The cart is upserted by this id")
    currency = serializers.CharField(min_length=3, max_length=3)
    total = serializers.DecimalField(min_value=Decimal("0"), required=False, **MONEY)
    lines = LineInputSerializer(many=True, max_length=MAX_LINES)  # type: ignore[call-arg]  # stub gap: many=True hands max_length to ListSerializer
    checkout_url = serializers.URLField(required=False, allow_blank=True, default="")
    abandoned_at = serializers.DateTimeField(required=False, allow_null=True)
    recovered_at = serializers.DateTimeField(required=False, allow_null=True)


class CustomEventCreateSerializer(CustomerReferenceSerializer):
    external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    name = serializers.CharField(max_length=100)
    properties = serializers.JSONField(required=False)
    occurred_at = serializers.DateTimeField(required=False)

    def validate_properties(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class _NotPlain(Exception):
    """The body is not one `custom_event_input` reads itself: the serializer reads it, or says what is wrong."""


@functools.cache
def _event_input_fields() -> dict[str, serializers.Field]:
    """`CustomEventCreateSerializer`'s own fields (with their range checks), built once for the process."""
    return dict(CustomEventCreateSerializer().fields)


def custom_event_input(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    `CustomEventCreateSerializer`'s validated data and `customer_kwargs()` for a `POST /api/v1/events/` body, read
    without building and deep-copying the serializer's fields per request (issue 12: the serializer was a fifth of
    a single-event POST's web CPU) when the body is plainly valid: a JSON object naming its customer by
    `customer_external_id` or `customer_id`, each value checked by the serializer's own field (built once), the
    customer read by the same query. Any other body (an embedded customer, a value a field refuses, an unknown
    customer) goes through the serializer, which reads it or says what is wrong with the same paths as always.
    """
    try:
        return _custom_event_plain(data)
    except (_NotPlain, serializers.ValidationError):
        serializer = CustomEventCreateSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data, serializer.customer_kwargs()


def _custom_event_plain(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if type(data) is not dict or "customer" in data:
        raise _NotPlain
    attrs: dict[str, Any] = {}
    for name, field in _event_input_fields().items():
        if name in data:  # (an absent field is left out, as the serializer skips it: none has a default)
            attrs[name] = field.run_validation(data[name])
    if "name" not in attrs or not isinstance(attrs.get("properties", {}), dict):
        raise _NotPlain
    # `CustomerReferenceSerializer.validate`: exactly one reference, to a customer that exists.
    if ("customer_id" in attrs) == ("customer_external_id" in attrs):
        raise _NotPlain
    if "customer_id" in attrs:
        known = Customer.objects.filter(pk=attrs["customer_id"]).first()
    else:
        known = _customer_by_external_id(attrs["customer_external_id"])
    if known is None:
        raise _NotPlain
    reference = {
        "customer_id": attrs.get("customer_id"),
        "customer_external_id": attrs.get("customer_external_id"),
        "customer_fields": None,
        "known": known,
    }
    return attrs, reference


class LocationPingSerializer(CustomerReferenceSerializer):
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)


class StoreMatchSerializer(serializers.Serializer):
    store = StoreSerializer()
    distance_m = serializers.FloatField()


class LocationResultSerializer(serializers.Serializer):
    matches = StoreMatchSerializer(many=True)


class RefundCreateSerializer(BoundedInputMixin, serializers.Serializer):
    external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    amount = serializers.DecimalField(min_value=Decimal("0.01"), **MONEY)
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    created_at = serializers.DateTimeField(required=False)


class ProductInputSerializer(BoundedInputMixin, serializers.Serializer):
    external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    title = serializers.CharField(max_length=255)
    sku = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    price = serializers.DecimalField(min_value=Decimal("0"), default=Decimal("0"), **MONEY)


class ExchangeRateSerializer(serializers.Serializer):
    """One rate: how many shop-currency units one unit of `currency` was worth on `day`."""

    id = serializers.IntegerField(read_only=True)
    currency = serializers.CharField(min_length=3, max_length=3)
    day = serializers.DateField()
    rate = serializers.DecimalField(max_digits=24, decimal_places=12)
    source = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")  # type: ignore[assignment]  # declared fields leave the class body (SerializerMetaclass): no clash with Field.source
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_rate(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError("An exchange rate must be a positive number.")
        return value


class ExchangeRateBatchSerializer(serializers.Serializer):
    items = ExchangeRateSerializer(many=True, allow_empty=False, max_length=1000)  # type: ignore[call-arg]  # stub gap: many=True hands max_length to ListSerializer
