from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apps.customers.models import Customer


class Segment(models.Model):
    """
    A dynamic segment: customers matching a condition of the shared condition language. Membership
    is materialised in SegmentMember by a set-based refresh, so conditions can test
    `customer.segments` in memory and in SQL against the same rows.
    """

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    condition = models.JSONField(null=True, blank=True, help_text="Condition JSON; empty means every customer")
    is_active = models.BooleanField(default=True, help_text="Inactive segments are not refreshed")
    member_count = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="segment_name_ci_uniq")]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """A customer in a segment as of the segment's last refresh."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="segment_memberships")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_uniq")]
        indexes = [models.Index(fields=["customer", "segment"], name="segment_member_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"


# The promotions sub-package's models belong to this app (its migrations live here).
# The fraud sub-package's models (rules and review cases) belong to this app too.
from .fraud.models import FraudCase, FraudRule  # noqa: E402, F401

# The landing sub-package's models (pages, versions, form submissions) too.
from .landing.models import FormSubmission, LandingPage, LandingPageVersion  # noqa: E402, F401
from .promotions.models import (  # noqa: E402, F401
    Campaign,
    CampaignHoldout,
    Code,
    CodeBatch,
    GiftCard,
    GiftCardEntry,
    Incentive,
    KillSwitchEvent,
    Limit,
    LimitCounter,
    LimitTake,
    PromotionSettings,
    PromotionsVersion,
    Redemption,
    RedemptionItem,
)
