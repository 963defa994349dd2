"""The messaging tables: one Delivery row per message on any channel (sent, failed, suppressed or queued)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .choices import Channel, DeliveryReason, DeliveryStatus, Purpose


class Delivery(models.Model):
    """
    One message to one customer on one channel. Every message a workflow, a campaign or a bulk run wants to
    send becomes a row first — also those that are never sent (status `suppressed` with the reason) — so
    "why didn't the customer get it?" has an answer. `key` is unique: the same run step (or bulk run, step and
    customer) can only ever make one row, and a row is sent at most once (claimed before sending).
    A row delayed by quiet hours or waiting for a retry stays `queued` with `send_after`.
    """

    key = models.CharField(max_length=120, unique=True, help_text="Idempotency key (run step, bulk run x customer)")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.MARKETING)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    to = models.CharField(max_length=254, blank=True, help_text="E-mail address, phone number or URL")
    template_key = models.CharField(max_length=100, blank=True)
    template_version = models.PositiveIntegerField(null=True, blank=True)
    locale = models.CharField(max_length=16, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    reason = models.CharField(max_length=24, choices=DeliveryReason.choices, blank=True)
    error = models.CharField(max_length=500, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    priority = models.SmallIntegerField(default=0, help_text="The sending workflow's priority (higher wins)")
    cause = models.CharField(max_length=100, blank=True, help_text="workflow_run:12, bulk_run:3, campaign:7 …")
    send_after = models.DateTimeField(null=True, blank=True, help_text="Queued: not before (quiet hours, retry)")
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True, help_text="In-app: when the customer read it")
    # What the e-mail provider reported afterwards (its tracking webhook, apps/customers/messaging/tracking.py).
    provider_event = models.CharField(max_length=16, blank=True, help_text="The provider's latest event")
    provider_event_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True, help_text="The provider delivered it")
    opened_at = models.DateTimeField(null=True, blank=True, help_text="First opened (the provider's tracking)")
    complained_at = models.DateTimeField(null=True, blank=True, help_text="Marked as spam by the recipient")

    class Meta:
        app_label = "customers"
        verbose_name_plural = "deliveries"
        indexes = [
            # The customer page, the cockpit inbox and the frequency caps read a customer's latest rows.
            models.Index(fields=["customer", "channel", "-created_at"], name="delivery_customer_channel"),
            models.Index(fields=["customer", "-created_at"], name="delivery_customer_latest"),
            # The sender's queue: due queued rows.
            models.Index(
                fields=["send_after"], name="delivery_queued_due", condition=models.Q(status=DeliveryStatus.QUEUED)
            ),
            # A run's deliveries (run page, bulk progress).
            models.Index(fields=["cause", "status"], name="delivery_cause_status"),
            # The provider's tracking events find their delivery by the provider's message id.
            models.Index(
                fields=["provider_message_id"],
                name="delivery_provider_message_id",
                condition=~models.Q(provider_message_id=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status=DeliveryStatus.SUPPRESSED) | ~models.Q(reason=""),
                name="delivery_suppressed_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} #{self.pk} to {self.to or self.customer_id} ({self.status})"


def _cap_field(label: str) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(null=True, blank=True, help_text=f"{label}; empty: no cap")


class SendingPolicy(models.Model):
    """
    Send governance for marketing messages (one row, edited in the console, every change audited): frequency
    caps per customer per day/week per channel and over all channels, quiet hours in the customer's time
    zone (delayed, never dropped) and the window in which a higher-priority workflow's message outranks a
    lower one. Transactional messages are exempt from all of it.
    """

    email_per_day = _cap_field("Marketing e-mails per customer per day")
    email_per_week = _cap_field("Marketing e-mails per customer per week (today and the 6 days before)")
    sms_per_day = _cap_field("Marketing SMS per customer per day")
    sms_per_week = _cap_field("Marketing SMS per customer per week")
    in_app_per_day = _cap_field("Marketing in-app messages per customer per day")
    in_app_per_week = _cap_field("Marketing in-app messages per customer per week")
    any_per_day = _cap_field("Marketing messages on all channels per customer per day")
    any_per_week = _cap_field("Marketing messages on all channels per customer per week")
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="e.g. 21:00; empty: no quiet hours")
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="e.g. 08:00 (may be after midnight)")
    quiet_hours_email = models.BooleanField(default=False, help_text="Quiet hours also delay e-mail")
    quiet_hours_sms = models.BooleanField(default=True, help_text="Quiet hours delay SMS")
    default_time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA zone for customers without a time zone of their own"
    )
    priority_window_minutes = models.PositiveIntegerField(
        default=60, help_text="Messages of two workflows this close together: the higher priority wins"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "customers"
        verbose_name = "sending policy"
        verbose_name_plural = "sending policy"
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="sending_policy_single_row")]

    def __str__(self) -> str:
        return "Sending policy"

    def clean(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}
        try:
            ZoneInfo(self.default_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["default_time_zone"] = "Unknown time zone (use an IANA name, e.g. Europe/Paris)."
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            errors["quiet_hours_end"] = "Set both ends of the quiet hours, or neither."
        elif self.quiet_hours_start is not None and self.quiet_hours_start == self.quiet_hours_end:
            errors["quiet_hours_end"] = "The quiet hours must not start and end at the same time."
        pairs = [("email", self.email_per_day, self.email_per_week), ("sms", self.sms_per_day, self.sms_per_week)]
        pairs += [("in_app", self.in_app_per_day, self.in_app_per_week), ("any", self.any_per_day, self.any_per_week)]
        for name, day, week in pairs:
            if day is not None and week is not None and day > week:
                errors[f"{name}_per_week"] = "A week's cap cannot be below the day's."
        if errors:
            raise ValidationError(errors)

    def quiet_channels(self) -> tuple[str, ...]:
        return tuple(name for name, on in (("email", self.quiet_hours_email), ("sms", self.quiet_hours_sms)) if on)

    @classmethod
    def current(cls) -> SendingPolicy:
        """The policy row (created with its defaults — no caps, no quiet hours — on first use)."""
        policy = cls.objects.filter(pk=1).first()
        if policy is None:
            policy, _ = cls.objects.get_or_create(pk=1)
        return policy
