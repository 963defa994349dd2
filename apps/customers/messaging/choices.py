from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app"
    WEBHOOK = "webhook", "Webhook"


class Purpose(models.TextChoices):
    """Marketing messages need consent and obey caps and quiet hours; transactional ones are exempt."""

    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"


class DeliveryReason(models.TextChoices):
    """Why a delivery was not sent (suppressed or failed), or why it waits (quiet hours, a retry)."""

    NO_CONSENT = "no_consent", "No consent"
    UNCONFIRMED = "unconfirmed", "Consent not confirmed"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    SUPPRESSED = "suppressed", "On the suppression list"
    BLOCKED = "blocked", "Customer blocked"
    FREQUENCY_CAP = "frequency_cap", "Frequency cap reached"
    QUIET_HOURS = "quiet_hours", "Quiet hours (delayed)"
    LOWER_PRIORITY = "lower_priority", "A higher-priority workflow messaged the customer"
    INVALID_ADDRESS = "invalid_address", "Invalid or missing address"
    PROVIDER_ERROR = "provider_error", "Provider error"
