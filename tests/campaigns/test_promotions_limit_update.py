"""
Changing a campaign budget (`limit_update`, the platform's `limit_row_update` underneath, shared with loyalty's
points limits): the counters follow the new value (a lower one never takes back what was used; per-customer
markers keep their 1), an incentive compares by id, what the limit counts cannot change once it counted, audited.
"""

from datetime import date
from decimal import Decimal

import pytest

from apps.campaigns.promotions import services
from apps.campaigns.promotions.eligibility import MARKER
from apps.campaigns.promotions.models import Limit, LimitCounter
from apps.platform.models import AuditEntry
from loyalty_site.lib.errors import ConflictError

from .promo_helpers import campaign_with

pytestmark = pytest.mark.django_db

BUCKET = date(1970, 1, 1)


def _budget() -> Limit:
    campaign = campaign_with(
        "Spring",
        incentives=[
            {"kind": "fixed_order", "amount": Decimal("5.00")},
            {"kind": "fixed_order", "amount": Decimal("7.00")},
        ],
    )
    first = campaign.incentives.order_by("position").first()
    return services.limit_create(
        campaign=campaign, incentive=first, scope="incentive", measure="discount_amount", limit=Decimal("100.00")
    )


def _counters(limit: Limit) -> list[tuple[str, Decimal, Decimal]]:
    return list(limit.counters.order_by("subject").values_list("subject", "used", "limit_value"))


def test_a_new_value_reaches_the_counters_but_not_the_markers_and_is_audited():
    limit = _budget()
    LimitCounter.objects.create(limit=limit, bucket=BUCKET, subject="", used=Decimal("30"), limit_value=limit.limit)
    LimitCounter.objects.create(limit=limit, bucket=BUCKET, subject="code:1", used=Decimal("80"), limit_value=100)
    LimitCounter.objects.create(limit=limit, bucket=BUCKET, subject=f"{MARKER}9", used=1, limit_value=1)

    changed = services.limit_update(limit=limit, value=Decimal("50.00"), incentive=limit.incentive)

    assert changed.limit == Limit.objects.get(pk=limit.pk).limit == Decimal("50.00")
    # under the new value: follows it; past it: closed at what it used; the marker keeps its 1
    assert _counters(limit) == [
        ("", Decimal("30"), Decimal("50")),
        ("code:1", Decimal("80"), Decimal("80")),
        (f"{MARKER}9", Decimal("1"), Decimal("1")),
    ]
    updated = AuditEntry.objects.get(object_type="campaigns.limit", action="updated")
    assert updated.changes == {"limit": {"old": "100.00", "new": "50.00"}}


def test_once_it_counted_another_incentive_is_refused_and_nothing_changes():
    limit = _budget()
    other = limit.campaign.incentives.exclude(pk=limit.incentive_id).get()
    LimitCounter.objects.create(limit=limit, bucket=BUCKET, subject="", used=Decimal("30"), limit_value=limit.limit)

    with pytest.raises(ConflictError) as refused:
        services.limit_update(limit=limit, value=Decimal("50.00"), incentive=other)

    assert (refused.value.code, refused.value.path) == ("limit_in_use", "measure")
    row = Limit.objects.get(pk=limit.pk)
    assert (row.incentive_id, row.limit) == (limit.incentive_id, Decimal("100.00"))
    assert _counters(limit) == [("", Decimal("30"), Decimal("100"))]
    assert not AuditEntry.objects.filter(object_type="campaigns.limit", action="updated").exists()


def test_before_it_counted_the_incentive_may_change():
    limit = _budget()
    other = limit.campaign.incentives.exclude(pk=limit.incentive_id).get()

    services.limit_update(limit=limit, incentive=other)

    assert Limit.objects.get(pk=limit.pk).incentive_id == other.pk
