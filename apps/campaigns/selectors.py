"""Read queries of the campaigns app (segments)."""

from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet
from django.utils import timezone

from apps.customers.models import Customer
from loyalty_site.lib.conditions import audience_queryset

PREVIEW_SAMPLE_SIZE = 8


def segment_preview(*, condition: Any, now: datetime | None = None) -> tuple[int, list[Customer]]:
    """
    How many customers match a (valid) segment condition right now, and a few of them (most recent buyers
    first): what the segment editor shows as you type. One COUNT and one bounded SELECT.
    """
    matching = audience_queryset(condition or None, now=now or timezone.now(), base=Customer.objects.all())
    sample = list(matching.order_by(F("last_order_at").desc(nulls_last=True), "-pk")[:PREVIEW_SAMPLE_SIZE])
    return matching.count(), sample


def segment_member_customers(*, segment_id: int) -> QuerySet[Customer]:
    """The customers a segment holds now (its materialised members)."""
    return Customer.objects.filter(segment_memberships__segment_id=segment_id)
