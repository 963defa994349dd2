from django.db import models


class Rounding(models.TextChoices):
    DOWN = "down", "Round down"
    NEAREST = "nearest", "Round to nearest"
    UP = "up", "Round up"


class ExpiryPolicy(models.TextChoices):
    DAYS_AFTER_ACTIVATION = "days_after_activation", "N days after activation"
    END_OF_MONTH = "end_of_month", "End of the month"
    END_OF_YEAR = "end_of_year", "End of the year"
    NEVER = "never", "Never"
    INACTIVITY = "inactivity", "After N days of inactivity"


class ReturnPolicy(models.TextChoices):
    PENDING_ONLY = "pending_only", "Take back from pending points only"
    FROM_BALANCE = "from_balance", "Take back from the balance (never below zero)"
    ALLOW_NEGATIVE = "allow_negative", "Take back from the balance, allow a negative balance"


class TierBasis(models.TextChoices):
    POINTS_EARNED = "points_earned", "Points earned"
    AMOUNT_SPENT = "amount_spent", "Amount spent"


class TierWindow(models.TextChoices):
    LIFETIME = "lifetime", "Lifetime"
    CALENDAR_YEAR = "calendar_year", "Calendar year"
    ROLLING_DAYS = "rolling_days", "Rolling N days"


class TierDowngrade(models.TextChoices):
    NEVER = "never", "Never"
    PERIOD_END = "period_end", "At the end of the period"
    GRACE_DAYS = "grace_days", "After a grace period"


class LotStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    SPENT = "spent", "Spent"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class SourceType(models.TextChoices):
    ORDER = "order", "Order"
    RULE = "rule", "Earning rule"
    EVENT = "event", "Custom event"
    REFERRAL = "referral", "Referral"
    WORKFLOW = "workflow", "Workflow run"
    ADMIN = "admin", "Admin"
    API = "api", "API"
    PROMOTION = "promotion", "Promotion (bonus points of a redemption)"


class EntryKind(models.TextChoices):
    EARN = "earn", "Earned"
    ACTIVATE = "activate", "Activated"
    SPEND = "spend", "Spent"
    EXPIRE = "expire", "Expired"
    REVERSE = "reverse", "Taken back (refund/cancel)"
    ROLLBACK = "rollback", "Returned (rollback)"
    DEBT = "debt", "Debt change"
    HOLD = "hold", "Held for review"


class RuleKind(models.TextChoices):
    PER_AMOUNT = "per_amount", "Points per amount spent"
    FIXED_EVENT = "fixed_event", "Fixed points for a custom event"
    PRODUCT_TAG_MULTIPLIER = "product_tag_multiplier", "Multiplier by product tag"
    TIME_BONUS = "time_bonus", "Time-boxed bonus multiplier"


class RuleLimitScope(models.TextChoices):
    RULE = "rule", "The rule (every customer together)"
    CUSTOMER = "customer", "Each customer"


class RewardKind(models.TextChoices):
    PERCENTAGE_DISCOUNT = "percentage_discount", "Percentage discount"
    FIXED_DISCOUNT = "fixed_discount", "Fixed discount"
    FREE_SHIPPING = "free_shipping", "Free shipping"
    GIFT_CARD = "gift_card", "Gift card"
    CASH_BACK = "cash_back", "Cash back"
    FREE_PRODUCT = "free_product", "Free product"
    MATERIAL_PRIZE = "material_prize", "Material prize"


class RedemptionStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    USED = "used", "Used"
    ROLLED_BACK = "rolled_back", "Rolled back"
    EXPIRED = "expired", "Expired"


class FulfilmentStatus(models.TextChoices):
    NOT_APPLICABLE = "n/a", "Not applicable"
    PENDING = "pending", "Pending"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"


class ReferralStatus(models.TextChoices):
    REGISTERED = "registered", "Registered (bonus waiting for first purchase)"
    REWARDED = "rewarded", "Rewarded"
    CAPPED = "capped", "Referrer cap reached (no bonus)"
    REFUSED = "refused", "Refused (fraud check)"


class HoldStatus(models.TextChoices):
    OPEN = "open", "Waiting for review"
    RELEASED = "released", "Approved (points activated)"
    REJECTED = "rejected", "Rejected (points reversed)"
