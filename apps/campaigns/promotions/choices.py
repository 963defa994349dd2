"""Enumerations of the promotions sub-domain."""

from django.db import models

# The calendar periods of limits are the platform's (apps.platform.limits), shared with loyalty's points limits.
from apps.platform.limits import LimitPeriod as LimitPeriod


class CampaignType(models.TextChoices):
    DISCOUNT_CODES = "discount_codes", "Discount codes"
    AUTOMATIC = "automatic", "Automatic promotion (no code)"
    GIFT_CARDS = "gift_cards", "Gift cards"
    LOYALTY_BONUS = "loyalty_bonus", "Loyalty bonus"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"


class Stacking(models.TextChoices):
    EXCLUSIVE = "exclusive", "Exclusive (applies alone)"
    JOINT = "joint", "Joint only with the listed categories"
    STACKABLE = "stackable", "Stackable"


class EffectKind(models.TextChoices):
    PERCENT_ORDER = "percent_order", "Percent off the order"
    PERCENT_LINES = "percent_lines", "Percent off matching lines"
    FIXED_ORDER = "fixed_order", "Fixed amount off the order"
    FIXED_PER_UNIT = "fixed_per_unit", "Fixed amount off each matching unit"
    FREE_SHIPPING = "free_shipping", "Free shipping"
    FIXED_PRICE_ITEM = "fixed_price_item", "Matching items at a fixed price (0 = free)"
    BUY_X_GET_Y = "buy_x_get_y", "Buy X get Y"
    POINTS_MULTIPLIER = "points_multiplier", "Loyalty points multiplier"
    BONUS_POINTS = "bonus_points", "Bonus loyalty points (awarded to the member when redeemed)"
    GIFT_CARD_CREDIT = "gift_card_credit", "Gift-card credit (the card's balance pays the order)"


class PercentBase(models.TextChoices):
    INITIAL = "initial", "The initial amount"
    DISCOUNTED = "discounted", "The amount already discounted by earlier incentives"


class FailureMode(models.TextChoices):
    SKIP = "skip", "Skip the failing code, apply the others"
    REJECT_ALL = "reject_all", "Reject every incentive when one code fails"


class LimitMeasure(models.TextChoices):
    REDEMPTIONS = "redemptions", "Redemptions"
    DISCOUNT_AMOUNT = "discount_amount", "Discount amount"
    ORDER_VALUE = "order_value", "Order value"
    DISTINCT_CUSTOMERS = "distinct_customers", "Distinct customers"
    POINTS = "points", "Loyalty points awarded"


class LimitScope(models.TextChoices):
    CAMPAIGN = "campaign", "The campaign"
    INCENTIVE = "incentive", "The incentive"
    CODE = "code", "Each code"
    CUSTOMER = "customer", "Each customer"


class LimitAction(models.TextChoices):
    REFUSE = "refuse", "Refuse the redemption"
    REDUCE = "reduce", "Reduce the discount (or the points) to what is left"
    PAUSE = "pause", "Refuse and pause the campaign"


class RedemptionStatus(models.TextChoices):
    RESERVED = "reserved", "Reserved"
    REDEEMED = "redeemed", "Redeemed"
    RELEASED = "released", "Released (reservation expired or replaced)"
    ROLLED_BACK = "rolled_back", "Rolled back"


class GiftCardEntryKind(models.TextChoices):
    ISSUE = "issue", "Issued"
    TOP_UP = "top_up", "Topped up"
    SPEND = "spend", "Spent on an order (or held by a reservation)"
    REFUND = "refund", "Given back (rollback, released reservation)"
    EXPIRE = "expire", "Expired"
