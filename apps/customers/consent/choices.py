from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app"


class Purpose(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", "Granted"
    PENDING = "pending", "Pending (awaiting double opt-in)"
    WITHDRAWN = "withdrawn", "Withdrawn"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Complaint"
    MANUAL = "manual", "Manual"


class DenyReason(models.TextChoices):
    """Why `allows` refuses a send (None means the send may go)."""

    NO_CONSENT = "no_consent", "No consent"
    UNCONFIRMED = "unconfirmed", "Consent awaiting double opt-in"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    SUPPRESSED = "suppressed", "Address suppressed"
    BLOCKED = "blocked", "Customer blocked"
