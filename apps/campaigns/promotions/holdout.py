"""
The campaign holdout on the delivery side: a campaign with `holdout_percent` keeps a stable random share of
customers (the same hashing as its checkout refusal, `loyalty_site.lib.split`) from receiving anything from it —
no code published to them from a segment, a workflow, a form or the API — and records each of them once as held
out (`CampaignHoldout`), so the reports can compare their orders with those of the customers who got a code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from loyalty_site.lib.split import campaign_holdout_salt, held_out

from .models import Campaign, CampaignHoldout


def holdout_partition(*, campaign: Campaign, customer_ids: Iterable[int]) -> tuple[list[int], list[int]]:
    """(receive, held out): the customers the campaign may deliver to, and those it keeps out. No query."""
    receive: list[int] = []
    kept_out: list[int] = []
    salt = campaign_holdout_salt(campaign.pk)
    for customer_id in customer_ids:
        (kept_out if held_out(salt, customer_id, campaign.holdout_percent) else receive).append(customer_id)
    return receive, kept_out


def holdouts_record(*, campaign: Campaign, customer_ids: list[int], ref: str = "", now: datetime | None = None) -> int:
    """Record these customers as held out of the campaign (once each: a second time is a no-op). One INSERT."""
    if not customer_ids:
        return 0
    now = now or timezone.now()
    created = CampaignHoldout.objects.bulk_create(
        [
            CampaignHoldout(campaign=campaign, customer_id=customer_id, held_out_at=now, ref=ref[:120])
            for customer_id in customer_ids
        ],
        ignore_conflicts=True,
    )
    return len(created)
