from django.db import models


class CustomerState(models.TextChoices):
    """The customer's account state (not the fraud status): a guest checkout, an invited account not yet
    activated, a registered account, or a disabled one."""

    GUEST = "guest", "Guest"
    INVITED = "invited", "Invited"
    REGISTERED = "registered", "Registered"
    DISABLED = "disabled", "Disabled"


class OrderChannel(models.TextChoices):
    ONLINE = "online", "Online"
    POS = "pos", "Point of sale"


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    FULFILLED = "fulfilled", "Fulfilled"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    CANCELLED = "cancelled", "Cancelled"


class DomainEventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"


class OutboxDrainHolder(models.TextChoices):
    """Who holds a consumer's "drain queued" mark (`OutboxDrain`)."""

    QUEUED = "queued", "a queued drain (sent by a writer)"
    LINGERING = "lingering", "a drain lingering before its next claim"


class CustomerStatus(models.TextChoices):
    """Fraud standing (not the account state): blocked earns, redeems and receives nothing; flagged is held."""

    ACTIVE = "active", "Active"
    FLAGGED = "flagged", "Flagged for review"
    BLOCKED = "blocked", "Blocked"
