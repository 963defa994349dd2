"""Reads of promotions: budget usage with a burn forecast, codes, redemptions."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone

from .choices import LimitScope, RedemptionStatus
from .eligibility import period_bucket
from .models import Campaign, Code, LimitCounter, LimitTake, Redemption


def budget_usage(*, campaign: Campaign, now: datetime | None = None) -> list[dict[str, Any]]:
    """
    For each campaign-wide limit: used / limit in the current period, percent, and a burn forecast —
    the day the limit runs out at the pace of the last 7 days (None when nothing was used lately).
    """
    now = now or timezone.now()
    out = []
    for limit in campaign.limits.order_by("pk"):
        if limit.scope in (LimitScope.CUSTOMER, LimitScope.CODE):
            out.append({"limit": limit.pk, "label": str(limit), "used": None, "limit_value": str(limit.limit)})
            continue
        bucket = period_bucket(limit.period, now)
        counter = LimitCounter.objects.filter(limit=limit, bucket=bucket, subject="").first()
        used = counter.used if counter else Decimal("0")
        since = now - timedelta(days=7)
        recent = LimitTake.objects.filter(
            counter__limit=limit,
            counter__bucket=bucket,
            redemption__created_at__gte=since,
            redemption__status__in=[RedemptionStatus.REDEEMED, RedemptionStatus.RESERVED],
        ).aggregate(total=Sum("amount"))["total"] or Decimal("0")
        forecast = None
        left = limit.limit - used
        if recent > 0 and left > 0:
            per_day = recent / Decimal(7)
            forecast = (timezone.localtime(now) + timedelta(days=float(left / per_day))).date().isoformat()
        percent = (used * 100 / limit.limit).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
        out.append(
            {
                "limit": limit.pk,
                "label": str(limit),
                "measure": limit.measure,
                "period": limit.period,
                "used": str(used),
                "limit_value": str(limit.limit),
                "percent": str(percent),
                "exhausted_on": forecast if left > 0 else "exhausted",
            }
        )
    return out


def codes_list(*, campaign: Campaign, search: str = "") -> QuerySet[Code]:
    rows = Code.objects.filter(campaign=campaign).select_related("customer").order_by("pk")
    if search:
        rows = rows.filter(code__startswith=search.strip().upper())
    return rows


def redemptions_list(*, campaign: Campaign | None = None) -> QuerySet[Redemption]:
    rows = Redemption.objects.select_related("customer").order_by("-created_at", "-pk")
    if campaign is not None:
        rows = rows.filter(items__campaign=campaign).distinct()
    return rows


def codes_published_to(*, customer: Any) -> QuerySet[Code]:
    """Codes published to the customer that are still active (qualify offers them)."""
    return Code.objects.filter(customer=customer, is_active=True).order_by("pk")


def voucher_issued_in_run(*, run_id: int, customer_id: int) -> str | None:
    """The latest code `campaigns.issue_voucher` published to the customer in workflow run `run_id`."""
    return (
        Code.objects.filter(customer_id=customer_id, publication_ref__startswith=f"workflow:wr{int(run_id)}:")
        .order_by("-published_at", "-pk")
        .values_list("code", flat=True)
        .first()
    )
