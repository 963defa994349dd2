"""Reads for landing pages: what a page's blocks show (program, tiers, rewards, campaigns) in fixed queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.loyalty.models import EarningRule, Membership, Program, Reward, Tier

from ..promotions.models import Campaign
from .choices import PageStatus
from .models import FormSubmission, LandingPage


def pages_list() -> QuerySet[LandingPage]:
    return LandingPage.objects.select_related("published_version", "updated_by").order_by("slug")


def page_published(*, slug: str) -> LandingPage | None:
    """The page served at /p/<slug>/ with its published version (None: unknown, draft or never published)."""
    return (
        LandingPage.objects.select_related("published_version")
        .filter(slug=slug, status=PageStatus.PUBLISHED, published_version__isnull=False)
        .first()
    )


def referral_page() -> LandingPage | None:
    """The published page of the referral template that /me/r/<code>/ shows (the most recently published)."""
    return (
        LandingPage.objects.select_related("published_version")
        .filter(template="referral", status=PageStatus.PUBLISHED, published_version__isnull=False)
        .order_by("-published_version__created_at", "-pk")
        .first()
    )


def referrer_by_code(code: str) -> Membership | None:
    return (
        Membership.objects.select_related("customer", "program").filter(referral_code=code.strip().upper()[:16]).first()
    )


def submissions_pending(*, customer_id: int) -> QuerySet[FormSubmission]:
    return FormSubmission.objects.filter(customer_id=customer_id, status="pending").select_related(
        "page", "page__published_version"
    )


@dataclass
class PageData:
    """What a page's blocks read, loaded once per request: only what its blocks need."""

    program: Program | None = None
    rules: list[EarningRule] = field(default_factory=list)
    tiers: list[Tier] = field(default_factory=list)
    rewards: list[Reward] = field(default_factory=list)
    campaigns: dict[int, Campaign] = field(default_factory=dict)
    now: datetime = field(default_factory=timezone.now)


def page_data(*, blocks: list[dict[str, Any]], program: Program | None = None) -> PageData:
    """At most 5 queries whatever the page: program, rules, tiers, rewards, campaigns."""
    kinds = {block.get("type") for block in blocks}
    now = timezone.now()
    data = PageData(now=now)
    if kinds & {"how_to_earn", "rewards", "tiers", "referral"}:
        data.program = program or Program.objects.filter(is_active=True).order_by("pk").first()
    if data.program is not None:
        if "how_to_earn" in kinds:
            data.rules = list(data.program.rules.filter(is_active=True).exclude(ends_at__lt=now).order_by("pk")[:12])
        if "tiers" in kinds:
            data.tiers = list(data.program.tiers.order_by("rank"))
        if "rewards" in kinds:
            data.rewards = list(
                data.program.rewards.filter(is_active=True)
                .exclude(valid_until__lt=now)
                .order_by("points_cost", "pk")[:24]
            )
    campaign_ids = {block["campaign"] for block in blocks if block.get("type") == "countdown"}
    if campaign_ids:
        data.campaigns = {campaign.pk: campaign for campaign in Campaign.objects.filter(pk__in=campaign_ids)}
    return data
