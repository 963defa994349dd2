"""
The promotion set a validation reads, kept in memory per process under the version stamp it was read with.

Validation is the hot path of the promotions API (every cart view of a shop may ask), and most of what it read
did not change between two requests: the promotion settings, the active automatic campaigns, their incentives,
limits and rules. The set holds those, with every validation rule and lines rule turned into a predicate once
(`condition_predicate`), so a validation reads only the version stamp and the kill switch (one statement), the
codes sent, the customer's own figures when a rule asks for them, and the budget counters.

Fresh on the very next request, in every process: `PromotionsVersion` holds one stamp, renewed by database
triggers in the transaction of any write to a campaign, incentive, limit or the settings (see migration 0018).
Each validation reads it together with the global kill switch and reloads the set when it differs; a stamp read
before the rows makes the set at least as new as its stamp (a change committed in between only costs one more
reload). Without the stamp row (a flushed test database) nothing is kept.

What is kept is shared by the threads of a process: the campaigns, incentives and limits it holds are read, never
written (reserve and redeem load their own inside their transaction, see `candidates_load(cached=False)`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from apps.platform.models import GlobalKillSwitch
from loyalty_site.lib.conditions import ConditionInvalid, Predicate, condition_predicate

from .choices import CampaignStatus, CampaignType
from .models import Campaign, Code, Incentive, Limit, PromotionSettings, PromotionsVersion


@dataclass
class PromotionSet:
    """The promotion settings and campaigns (with incentives, limits and predicates) as of `stamp`."""

    stamp: str | None
    settings: PromotionSettings
    automatic: tuple[Campaign, ...]
    campaigns: dict[int, Campaign] = field(default_factory=dict)  # by pk: the automatic ones + code campaigns seen
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def campaigns_get(self, ids: Iterable[int]) -> dict[int, Campaign]:
        """These campaigns (any status: the evaluation says why one does not apply), loaded once per set."""
        wanted = set(ids)
        missing = wanted - self.campaigns.keys()
        if missing:
            loaded = campaigns_prepare(Campaign.objects.filter(pk__in=missing).order_by("pk"))
            with self.lock:
                for campaign in loaded:
                    self.campaigns.setdefault(campaign.pk, campaign)
        return {pk: self.campaigns[pk] for pk in wanted if pk in self.campaigns}


_current: PromotionSet | None = None


def stamp_read() -> tuple[str | None, bool]:
    """The promotion set's version stamp (None without its row) and whether the global kill switch is on."""
    version, switch = PromotionsVersion._meta.db_table, GlobalKillSwitch._meta.db_table
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT stamp FROM {quote(version)} WHERE id = 1), "  # noqa: S608 - table names, no input
            f"EXISTS (SELECT 1 FROM {quote(switch)} WHERE is_on = %s)",
            [True],
        )
        stamp, switched_on = cursor.fetchone()
    return stamp, bool(switched_on)


def promotion_set() -> tuple[PromotionSet, bool]:
    """The current promotion set (reloaded when its stamp moved) and whether the global kill switch is on."""
    stamp, switched_on = stamp_read()
    return _set_for(stamp), switched_on


def promotion_set_and_codes(texts: list[str]) -> tuple[PromotionSet, bool, list[Code]]:
    """
    `promotion_set()` and the codes among `texts` (normalised; their campaign not attached) read in the same
    statement: a validation with codes makes one round trip for both. Raw SQL through `objects.raw`, so the code
    fields' converters apply.
    """
    if not texts:
        current, switched_on = promotion_set()
        return current, switched_on, []
    quote = connection.ops.quote_name
    version, switch, code = (quote(model._meta.db_table) for model in (PromotionsVersion, GlobalKillSwitch, Code))
    marks = ", ".join(["%s"] * len(texts))
    rows = list(
        Code.objects.raw(
            "SELECT c.*, s.promo_stamp, s.promo_switched_on FROM ("  # noqa: S608 - table names, no input
            f"SELECT (SELECT stamp FROM {version} WHERE id = 1) AS promo_stamp, "
            f"EXISTS (SELECT 1 FROM {switch} WHERE is_on = %s) AS promo_switched_on) s "
            f"LEFT JOIN {code} c ON c.code IN ({marks})",
            [True, *texts],
        )
    )
    first: Any = rows[0]  # (the two extra columns, on every row)
    stamp, switched_on = first.promo_stamp, bool(first.promo_switched_on)
    return _set_for(stamp), switched_on, [row for row in rows if row.pk is not None]


def _set_for(stamp: str | None) -> PromotionSet:
    global _current
    current = _current
    if current is None or stamp is None or current.stamp != stamp:
        current = _load(stamp)
        _current = current if stamp is not None else None
    return current


def promotion_set_forget() -> None:
    """Drop this process's set (the next validation loads it again); for tests and after a restore."""
    global _current
    _current = None


def _load(stamp: str | None) -> PromotionSet:
    settings = PromotionSettings.objects.order_by("pk").first() or PromotionSettings()
    automatic = campaigns_prepare(
        Campaign.objects.filter(type=CampaignType.AUTOMATIC, status=CampaignStatus.ACTIVE).order_by("pk")
    )
    return PromotionSet(
        stamp=stamp,
        settings=settings,
        automatic=tuple(automatic),
        campaigns={campaign.pk: campaign for campaign in automatic},
    )


def campaigns_prepare(campaigns: Iterable[Campaign]) -> list[Campaign]:
    """
    The campaigns with what the evaluation reads attached: `_promo_incentives` and `_promo_limits` (in their
    order, two queries for all of them), `_promo_rule` (the validation rule as a predicate) and each incentive's
    `_promo_lines` (its lines rule as a predicate). A rule the catalog no longer accepts gets no predicate: the
    evaluation then calls `condition_evaluate`, which raises as it always did.
    """
    campaigns = list(campaigns)
    ids = [campaign.pk for campaign in campaigns]
    incentives: dict[int, list[Incentive]] = {}
    limits: dict[int, list[Limit]] = {}
    if ids:
        for incentive in Incentive.objects.filter(campaign_id__in=ids).order_by("position", "pk"):
            incentive._promo_lines = _predicate_or_none(incentive.lines_rule)
            incentives.setdefault(incentive.campaign_id, []).append(incentive)
        for limit in Limit.objects.filter(campaign_id__in=ids).order_by("pk"):
            limits.setdefault(limit.campaign_id, []).append(limit)
    for campaign in campaigns:
        campaign._promo_incentives = incentives.get(campaign.pk, [])
        campaign._promo_limits = limits.get(campaign.pk, [])
        campaign._promo_rule = _predicate_or_none(campaign.validation_rule)
    return campaigns


def _predicate_or_none(condition: dict | None) -> Predicate | None:
    if not condition:
        return None
    try:
        return condition_predicate(condition)
    except ConditionInvalid:
        return None
