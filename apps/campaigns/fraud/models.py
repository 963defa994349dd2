"""Fraud rules and the review cases they open (models of the `campaigns` app; migrations live there)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.customers.models import Customer
from apps.loyalty.models import PointHold, Referral

from .choices import FraudAction, FraudCaseStatus, FraudTrigger


class FraudRule(models.Model):
    """
    A fraud check: when `trigger` happens and `condition` (the shared condition language, with the velocity
    fields `fraud.*`) is true, take `action`, optionally fire the global kill switch or pause a campaign, and
    open a review case with the values the condition read. Saved only through `fraud_rule_save` (validated).
    """

    name = models.CharField(max_length=120, unique=True)
    description = models.CharField(max_length=255, blank=True)
    builtin_key = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    is_enabled = models.BooleanField(default=False)
    trigger = models.CharField(max_length=32, choices=FraudTrigger.choices)
    condition = models.JSONField(default=dict, help_text="Shared condition language; velocity fields are fraud.*")
    action = models.CharField(max_length=16, choices=FraudAction.choices, default=FraudAction.FLAG)
    fire_kill_switch = models.BooleanField(default=False, help_text="Also turn the global kill switch on")
    pause_campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Also pause this promotion campaign",
    )
    matched_count = models.PositiveIntegerField(default=0)
    last_matched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["trigger", "is_enabled"], name="fraud_rule_trigger_idx")]

    def __str__(self) -> str:
        return self.name


class FraudCase(models.Model):
    """
    One event a fraud rule matched, waiting for (or after) review: the evidence is the values the rule's
    condition read. Approving releases the points it held and clears the customer's status; rejecting
    reverses the held points. One case per rule and outbox event (a re-delivered event opens nothing new).
    """

    rule = models.ForeignKey(FraudRule, null=True, on_delete=models.SET_NULL, related_name="cases")
    rule_name = models.CharField(max_length=120)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="fraud_cases")
    event_id = models.BigIntegerField(help_text="The outbox event the rule matched")
    trigger = models.CharField(max_length=32, choices=FraudTrigger.choices)
    action = models.CharField(max_length=16, choices=FraudAction.choices)
    evidence = models.JSONField(
        default=list, help_text="What the rule's condition read: [{path, field, window, op, expected, value}]"
    )
    hold = models.ForeignKey(PointHold, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=FraudCaseStatus.choices, default=FraudCaseStatus.OPEN)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["rule", "event_id"], name="fraud_case_rule_event_uniq")]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="fraud_case_queue_idx", condition=Q(status="open")),
            models.Index(fields=["customer", "-created_at"], name="fraud_case_customer_idx"),
        ]
        permissions = [("review_fraudcase", "Can approve or reject fraud cases")]

    def __str__(self) -> str:
        return f"{self.rule_name} — {self.customer}"
