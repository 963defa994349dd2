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
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status=DeliveryStatus.SUPPRESSED) | ~models.Q(reason=""),
                name="delivery_suppressed_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} #{self.pk} to {self.to or self.customer_id} ({self.status})"
