"""Input and output shapes of the promotions API (amounts as strings in the shop currency)."""

import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any, Final

from rest_framework import serializers

from apps.customers.api.serializers import MoneyDigits, money_decimals_errors
from apps.customers.models import Customer
from apps.platform.models import GlobalKillSwitch, KillSwitchChange
from loyalty_site.lib.money import minor_units, shop_currency

from ..choices import EffectKind, LimitAction, LimitMeasure, LimitPeriod, LimitScope
from ..eligibility import Candidate, Cart, CartLine, Outcome, minor_to_text
from ..models import CAMPAIGN_FIELDS, Campaign, Code, GiftCard, GiftCardEntry, Incentive, Limit, Redemption

MONEY: Final[MoneyDigits] = {"max_digits": 14, "decimal_places": 2}
MAX_LINES = 500
MAX_CODES = 20


class CartLineSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    sku = serializers.CharField(required=False, allow_blank=True, max_length=64)
    title = serializers.CharField(required=False, allow_blank=True, max_length=255)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000)
    unit_price = serializers.DecimalField(min_value=Decimal("0"), **MONEY)


class CheckoutSerializer(serializers.Serializer):
    """A cart to validate, reserve or redeem: customer (optional), lines, shipping, codes."""

    customer_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    customer_external_id = serializers.CharField(required=False, allow_blank=True, max_length=255)
    currency = serializers.CharField(max_length=3)
    shipping = serializers.DecimalField(required=False, default=Decimal("0"), min_value=Decimal("0"), **MONEY)
    channel = serializers.CharField(required=False, allow_blank=True, max_length=30)
    lines = CartLineSerializer(many=True, max_length=MAX_LINES)  # type: ignore[call-arg]  # stub gap: many=True hands max_length to ListSerializer
    codes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list, max_length=MAX_CODES
    )
    session = serializers.CharField(required=False, allow_blank=True, max_length=120)
    order_ref = serializers.CharField(required=False, allow_blank=True, max_length=120)
    ip = serializers.IPAddressField(
        required=False, allow_null=True, help_text="The shopper's IP address as the shop saw it (fraud checks)"
    )
    device = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="The shopper's device id (fraud checks)"
    )

    def validate_currency(self, value: str) -> str:
        code = value.upper()
        if code != shop_currency():
            raise serializers.ValidationError(f"Promotions are computed in the shop currency {shop_currency()}.")
        return code

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = money_decimals_errors(attrs, currency=attrs.get("currency"), fields=self.fields)
        if errors:
            raise serializers.ValidationError(errors)
        return checkout_complete(attrs)


def checkout_complete(attrs: dict[str, Any]) -> dict[str, Any]:
    """The checked input with its `customer` (looked up) and `cart` (built): what validate/reserve/redeem take."""
    customer = None
    if attrs.get("customer_id"):
        customer = Customer.objects.filter(pk=attrs["customer_id"]).first()
        if customer is None:
            raise serializers.ValidationError({"customer_id": "No customer with this id."})
    elif attrs.get("customer_external_id"):
        customer = Customer.objects.filter(external_id=attrs["customer_external_id"]).first()
        if customer is None:
            raise serializers.ValidationError({"customer_external_id": "No customer with this external id."})
    attrs["customer"] = customer
    attrs["cart"] = Cart(
        currency=attrs["currency"],
        shipping=attrs.get("shipping") or Decimal("0"),
        channel=attrs.get("channel", ""),
        lines=[
            CartLine(
                index=index,
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                title=line.get("title", ""),
                product_id=line.get("product_id"),
                sku=line.get("sku", ""),
            )
            for index, line in enumerate(attrs["lines"])
        ],
    )
    return attrs


# --- The checkout without DRF, for the common well-formed body -------------------------------------------

CENT = Decimal("0.01")
# What MONEY's DecimalField (≥ 0, 14 digits, 2 decimals) surely accepts, as a string.
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")
_LINE_KEYS = frozenset({"product_id", "sku", "title", "quantity", "unit_price"})
_FAST_KEYS = frozenset({"currency", "lines", "codes", "shipping", "channel", "customer_id", "customer_external_id"})


class _NotPlain(Exception):
    """The body is not of the plain shape `checkout_parse` reads: the serializer reads it (and says what is wrong)."""


def _text(value: Any, *, max_length: int, blank: bool) -> str:
    """A CharField's value (stripped), or _NotPlain for anything the CharField would refuse or convert."""
    if not isinstance(value, str) or "\x00" in value:
        raise _NotPlain
    text = value.strip()
    if (not text and not blank) or len(text) > max_length:
        raise _NotPlain
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # (a lone surrogate, which the CharField refuses)
        raise _NotPlain from None
    return text


def _amount(value: Any, minor: int) -> Decimal:
    if type(value) is int and 0 <= value < 10**12:
        return Decimal(value).quantize(CENT)
    if isinstance(value, str) and _AMOUNT.fullmatch(value):
        amount = Decimal(value)
        if amount != amount.quantize(Decimal(1).scaleb(-minor)):
            raise _NotPlain  # more decimals than the shop currency has: the serializer names it
        return amount.quantize(CENT)
    raise _NotPlain


def _whole(value: Any, *, low: int, high: int | None = None) -> int:
    if type(value) is not int or value < low or (high is not None and value > high):
        raise _NotPlain
    return value


def checkout_parse(data: Any) -> dict[str, Any]:
    """
    The checkout as `CheckoutSerializer` gives it — the same values, customer and cart — read without DRF's field
    machinery when the body is plainly valid (the fields validate/qualify take, strings and integers of the
    expected types within the same bounds); any other body goes through the serializer, which reads it or says
    what is wrong, with the same paths as always. Validation is the hot path: DRF spent as long reading a 20-line
    cart as the evaluation took to price it.
    """
    try:
        attrs = _checkout_plain(data)
    except _NotPlain:
        serializer = CheckoutSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
    try:
        return checkout_complete(attrs)
    except serializers.ValidationError as error:  # (shaped as the serializer's `validate` would raise it)
        raise serializers.ValidationError(detail=serializers.as_serializer_error(error)) from None


def _checkout_plain(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not data.keys() <= _FAST_KEYS:
        raise _NotPlain
    shop = shop_currency()
    currency = _text(data.get("currency"), max_length=3, blank=False).upper()
    if currency != shop:
        raise _NotPlain
    minor = minor_units(shop)
    lines, codes = data.get("lines"), data.get("codes", [])
    if not isinstance(lines, list) or len(lines) > MAX_LINES or not isinstance(codes, list) or len(codes) > MAX_CODES:
        raise _NotPlain
    attrs: dict[str, Any] = {"currency": currency}
    if "customer_id" in data:
        attrs["customer_id"] = None if data["customer_id"] is None else _whole(data["customer_id"], low=1)
    if "customer_external_id" in data:
        attrs["customer_external_id"] = _text(data["customer_external_id"], max_length=255, blank=True)
    attrs["shipping"] = _amount(data["shipping"], minor) if "shipping" in data else Decimal("0")
    if "channel" in data:
        attrs["channel"] = _text(data["channel"], max_length=30, blank=True)
    parsed = []
    for line in lines:
        if not isinstance(line, dict) or not line.keys() <= _LINE_KEYS:
            raise _NotPlain
        item: dict[str, Any] = {}
        if "product_id" in line:
            item["product_id"] = None if line["product_id"] is None else _whole(line["product_id"], low=1)
        if "sku" in line:
            item["sku"] = _text(line["sku"], max_length=64, blank=True)
        if "title" in line:
            item["title"] = _text(line["title"], max_length=255, blank=True)
        item["quantity"] = _whole(line.get("quantity"), low=1, high=10_000)
        item["unit_price"] = _amount(line.get("unit_price"), minor)
        parsed.append(item)
    attrs["lines"] = parsed
    attrs["codes"] = [_text(code, max_length=64, blank=False) for code in codes]
    return attrs


def _candidate_json(candidate: Candidate) -> dict[str, Any]:
    refusal, campaign = candidate.refusal, candidate.campaign
    return {
        "campaign": campaign.id if campaign else None,  # (`.id`, not the `pk` property: ~45 skipped an answer)
        "name": campaign.name if campaign else None,
        "code": candidate.code_text or None,
        "reason": refusal.reason if refusal else None,
        "path": refusal.path if refusal else None,
        "message": refusal.message if refusal else None,
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The validation answer: applied incentives in order with per-line discounts, skipped ones with why."""
    money = _money_writer(outcome.cart.currency)
    line_discount: dict[int, int] = {}
    applied = []
    for position, item in enumerate(outcome.applied, start=1):
        for part in item.incentives:
            for index, amount in part.effect.lines.items():
                line_discount[index] = line_discount.get(index, 0) + amount
        campaign = item.candidate.campaign
        assert campaign is not None  # (an applied candidate has its campaign)
        applied.append(
            {
                "order": position,
                "campaign": campaign.pk,
                "name": campaign.name,
                "code": item.candidate.code_text or None,
                "gift_card": item.candidate.is_gift_card,
                "category": campaign.category,
                "discount": money(item.discount),
                "incentives": [
                    {
                        "incentive": part.incentive.pk,
                        "kind": part.incentive.kind,
                        "discount": money(part.effect.total),
                        "shipping_discount": money(part.effect.shipping),
                        "points_multiplier": str(part.effect.multiplier) if part.effect.multiplier else None,
                        "points": part.effect.points,
                        "lines": [
                            {"index": index, "discount": money(amount)}
                            for index, amount in sorted(part.effect.lines.items())
                        ],
                    }
                    for part in item.incentives
                ],
            }
        )
    subtotal = sum(line.initial for line in outcome.lines)
    discount = outcome.discount_total
    credit = outcome.credit_total
    return {
        "currency": outcome.cart.currency,
        "subtotal": money(subtotal),
        "shipping": money(outcome.shipping),
        "discount_total": money(discount),
        "gift_card_total": money(credit),
        "total": money(subtotal + outcome.shipping - discount - credit),
        "applied": applied,
        "skipped": [_candidate_json(candidate) for candidate in outcome.skipped],
        "lines": [
            {
                "index": line.index,
                "subtotal": money(line.initial),
                "discount": money(line_discount.get(line.index, 0)),
                "total": money(line.initial - line_discount.get(line.index, 0)),
            }
            for line in outcome.lines
        ],
    }


def _money_writer(currency: str) -> Callable[[int], str]:
    """`minor_to_text` for one currency (an answer writes ~160 amounts, ~65 distinct; see `_money_text`)."""
    return partial(_money_text, currency)


@lru_cache(maxsize=8192)
def _money_text(currency: str, amount: int) -> str:
    """
    `minor_to_text`, kept per process: the carts of a shop repeat their prices and discounts, so most amounts of an
    answer were written for an earlier one (a cache hit is one C call; writing the text was a third of the answer).
    """
    return minor_to_text(amount, currency)


class PromotionRedemptionSerializer(serializers.ModelSerializer):
    items = serializers.SerializerMethodField()

    class Meta:
        model = Redemption
        fields = [
            "id",
            "session",
            "customer",
            "status",
            "currency",
            "order_total",
            "discount_total",
            "gift_card_total",
            "rolled_back_total",
            "discount_rolled_back",
            "rolled_back_at",
            "order_ref",
            "expires_at",
            "created_at",
            "redeemed_at",
            "items",
        ]

    def get_items(self, redemption: Redemption) -> list[dict[str, Any]]:
        return [
            {
                "campaign": item.campaign_id,
                "incentive": item.incentive_id,
                "code": item.code.code if item.code else None,
                "discount": str(item.discount),
                "discount_returned": str(item.discount_returned),
            }
            for item in redemption.items.select_related("code").order_by("pk")
        ]


class PromotionRollbackSerializer(serializers.Serializer):
    amount = serializers.DecimalField(required=False, allow_null=True, min_value=Decimal("0.01"), **MONEY)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255)


class KillSwitchSerializer(serializers.Serializer):
    on = serializers.BooleanField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class KillSwitchStateSerializer(serializers.ModelSerializer):
    """The global kill switch (`apps.platform`); `kill_switch*` names kept for API clients of the first version."""

    kill_switch = serializers.BooleanField(source="is_on")
    kill_switch_reason = serializers.CharField(source="reason")
    kill_switch_at = serializers.DateTimeField(source="changed_at", allow_null=True, read_only=True)
    kill_switch_by = serializers.IntegerField(source="changed_by_id", read_only=True, allow_null=True)

    class Meta:
        model = GlobalKillSwitch
        fields = ["kill_switch", "kill_switch_reason", "kill_switch_at", "kill_switch_by", "actor"]


class KillSwitchChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = KillSwitchChange
        fields = ["turned_on", "reason", "user", "actor", "created_at"]


class IncentiveSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=EffectKind.choices)
    percent = serializers.DecimalField(max_digits=6, decimal_places=3, required=False, allow_null=True)
    amount = serializers.DecimalField(required=False, allow_null=True, min_value=Decimal("0"), **MONEY)
    max_discount = serializers.DecimalField(required=False, allow_null=True, min_value=Decimal("0"), **MONEY)
    lines_rule = serializers.JSONField(required=False, allow_null=True)

    class Meta:
        model = Incentive
        fields = [
            "id",
            "kind",
            "percent",
            "amount",
            "max_discount",
            "buy_quantity",
            "get_quantity",
            "multiplier",
            "points",
            "lines_rule",
            "is_active",
        ]


class BudgetLimitSerializer(serializers.ModelSerializer):
    measure = serializers.ChoiceField(choices=LimitMeasure.choices)
    period = serializers.ChoiceField(choices=LimitPeriod.choices, default=LimitPeriod.TOTAL)
    scope = serializers.ChoiceField(choices=LimitScope.choices, default=LimitScope.CAMPAIGN)
    action = serializers.ChoiceField(choices=LimitAction.choices, default=LimitAction.REFUSE)
    limit = serializers.DecimalField(min_value=Decimal("0.01"), **MONEY)

    class Meta:
        model = Limit
        fields = ["id", "measure", "limit", "period", "scope", "action"]


class CampaignSerializer(serializers.ModelSerializer):
    incentives = IncentiveSerializer(many=True, required=False, max_length=20)  # type: ignore[call-arg]  # stub gap: many=True hands max_length to ListSerializer
    limits = BudgetLimitSerializer(many=True, required=False, max_length=20)  # type: ignore[call-arg]  # stub gap: many=True hands max_length to ListSerializer
    validation_rule = serializers.JSONField(required=False, allow_null=True)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7), required=False, max_length=7
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)
    joint_categories = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)
    budget = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ["id", *CAMPAIGN_FIELDS, "incentives", "limits", "budget", "created_at"]
        read_only_fields = ["owner", "created_at"]  # the owner is the user who creates it through the API
        validators: list = []  # name uniqueness (case-insensitive) is checked by the service, with its path

    def get_budget(self, campaign: Campaign) -> list[dict[str, Any]]:
        from ..selectors import budget_usage

        return budget_usage(campaign=campaign)


class VoucherCodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Code
        fields = ["id", "code", "max_uses", "uses", "expires_at", "customer", "published_at", "is_active"]


class CodeCreateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    max_uses = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_days_after_publication = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=3650
    )


class CodeGenerateSerializer(serializers.Serializer):
    pattern = serializers.CharField(max_length=60)
    count = serializers.IntegerField(min_value=1, max_value=100_000)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_days_after_publication = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=3650
    )


class CodePublishSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(min_value=1)


class CodeImportSerializer(serializers.Serializer):
    csv = serializers.CharField(
        max_length=2_000_000,
        trim_whitespace=False,
        help_text="CSV text, header `code[,max_uses][,expires_at][,expires_days_after_publication]`; "
        "at most 100,000 rows",
    )


class SegmentPublishSerializer(serializers.Serializer):
    segment = serializers.IntegerField(min_value=1, help_text="The segment's id: one free code to each member")


class IncentiveResourceSerializer(IncentiveSerializer):
    """An incentive as its own resource: `campaign` says whose; written through the audited services."""

    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all())

    class Meta(IncentiveSerializer.Meta):
        fields = ["id", "campaign", *IncentiveSerializer.Meta.fields[1:], "position"]
        extra_kwargs = {"position": {"required": False}}


class LimitResourceSerializer(BudgetLimitSerializer):
    """A limit (budget) as its own resource, with its live usage in the current period."""

    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all())
    incentive = serializers.PrimaryKeyRelatedField(queryset=Incentive.objects.all(), required=False, allow_null=True)
    limit = serializers.DecimalField(min_value=Decimal("0.01"), **MONEY)
    usage = serializers.SerializerMethodField()

    class Meta(BudgetLimitSerializer.Meta):
        fields = ["id", "campaign", "incentive", "measure", "limit", "period", "scope", "action", "usage"]

    def get_usage(self, limit: Limit) -> dict[str, Any] | None:
        from ..selectors import budget_usage

        rows = [row for row in budget_usage(campaign=limit.campaign) if row["limit"] == limit.pk]
        return rows[0] if rows else None


# --- Gift cards -------------------------------------------------------------------------------------------


class GiftCardEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = GiftCardEntry
        fields = ["id", "kind", "amount", "balance_after", "redemption", "reason", "actor", "created_at"]
        read_only_fields = fields


class GiftCardSerializer(serializers.ModelSerializer):
    """A card: its code, campaign, currency, balance, holder and expiry (the code's)."""

    code = serializers.CharField(source="code.code", read_only=True)
    campaign = serializers.IntegerField(source="code.campaign_id", read_only=True)
    customer = serializers.IntegerField(source="code.customer_id", read_only=True, allow_null=True)
    expires_at = serializers.DateTimeField(source="code.expires_at", read_only=True, allow_null=True)
    is_active = serializers.BooleanField(source="code.is_active", read_only=True)

    class Meta:
        model = GiftCard
        fields = [
            "id",
            "code",
            "campaign",
            "currency",
            "initial",
            "balance",
            "customer",
            "expires_at",
            "is_active",
            "created_at",
        ]
        read_only_fields = fields


class GiftCardIssueSerializer(serializers.Serializer):
    """Issue a card: the campaign (type gift cards), the amount, optionally code, currency, holder, expiry."""

    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all())
    amount = serializers.DecimalField(min_value=Decimal("0.01"), **MONEY)
    currency = serializers.CharField(required=False, allow_blank=True, max_length=3)
    code = serializers.CharField(required=False, allow_blank=True, max_length=64)
    customer_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["customer"] = None
        if attrs.get("customer_id"):
            attrs["customer"] = Customer.objects.filter(pk=attrs["customer_id"]).first()
            if attrs["customer"] is None:
                raise serializers.ValidationError({"customer_id": "No customer with this id."})
        attrs.pop("customer_id", None)
        return attrs


class GiftCardTopUpSerializer(serializers.Serializer):
    amount = serializers.DecimalField(min_value=Decimal("0.01"), **MONEY)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
