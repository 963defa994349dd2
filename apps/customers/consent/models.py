from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..models import Customer
from .choices import Channel, ConsentStatus, Purpose, SuppressionReason


class Consent(models.Model):
    """
    A customer's consent for one channel and one purpose: granted, pending (awaiting double opt-in) or
    withdrawn, with where it came from. One row per customer x channel x purpose; every change is audited.

    The e-mail x marketing row is mirrored on `Customer.accepts_marketing` / `unsubscribed_at` (filters,
    the field catalog and bulk imports read those columns); a customer without that row is read from the
    mirror (customers loaded before consents existed, or by `generate_data`'s COPY).
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    source = models.CharField(
        max_length=64, help_text="api, admin, csv, import, form:<slug>, connector:<id>, unsubscribe_link …"
    )
    requested_at = models.DateTimeField(null=True, blank=True, help_text="When double opt-in was requested")
    granted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True, help_text="When the double opt-in link was clicked")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every confirmation request: an older confirmation link no longer confirms anything.
    confirm_nonce = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer", "channel", "purpose"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel", "purpose"], name="consent_customer_channel_uniq"),
            models.CheckConstraint(condition=Q(status__in=ConsentStatus.values), name="consent_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel}/{self.purpose}: {self.status}"


class Suppression(models.Model):
    """
    An address that receives nothing on its channel (a hard bounce, a spam complaint, or added by hand),
    whichever customer holds it. `allows` consults it before any send.
    """

    address = models.CharField(max_length=254, help_text="E-mail (lower-case) or phone number")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    source = models.CharField(max_length=64, blank=True, help_text="admin, api, bounce webhook, …")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["channel", "address"], name="suppression_channel_address_uniq")]

    def __str__(self) -> str:
        return f"{self.address} ({self.channel}: {self.reason})"


class ConsentEvent(models.Model):
    """
    One change of a customer's consent (the history shown on the customer page; the audit log holds the
    same change with who made it): old → new status, from which source, caused by what, when.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_events")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    old_status = models.CharField(max_length=10, blank=True, help_text="Empty: no consent recorded before")
    new_status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    source = models.CharField(max_length=64)
    cause = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="consent_event_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel}/{self.purpose}: {self.old_status or '—'} → {self.new_status}"
