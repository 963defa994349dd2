from django.db import models


class CustomerState(models.TextChoices):
    REGISTERED = "registered", "Registered"
    ACTIVATED = "activated", "Activated"
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


class CustomerStatus(models.TextChoices):
    """Fraud standing (not the account state): blocked earns, redeems and receives nothing; flagged is held."""

    ACTIVE = "active", "Active"
    FLAGGED = "flagged", "Flagged for review"
    BLOCKED = "blocked", "Blocked"
