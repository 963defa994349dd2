"""A tier ladder stays consistent (ranks and thresholds rise together) and moving members is confirmed first."""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.loyalty import services
from apps.loyalty.models import Tier
from loyalty_site.lib.errors import DomainError
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def ladder():
    program = program_make()
    bronze = Tier.objects.create(program=program, name="Bronze", rank=1, threshold=Decimal("0"))
    silver = Tier.objects.create(program=program, name="Silver", rank=2, threshold=Decimal("500"))
    gold = Tier.objects.create(program=program, name="Gold", rank=3, threshold=Decimal("1000"))
    for points in (100, 600, 700, 1200):
        membership, _ = services.member_join(customer=CustomerFactory(), program=program)
        services.points_award(membership=membership, points=points, reason="history", key=f"k{points}")
    services.tiers_recalculate_all()
    return program, bronze, silver, gold


def _state(program):
    return list(Tier.objects.filter(program=program).order_by("rank").values_list("name", "rank", "threshold"))


def test_the_service_refuses_a_ladder_whose_thresholds_do_not_rise_with_the_ranks(ladder):
    program, _bronze, silver, _gold = ladder
    before = _state(program)

    silver.threshold = Decimal("1500")
    with pytest.raises(DomainError) as above_gold:
        services.tier_save(tier=silver)
    with pytest.raises(DomainError) as same_rank:
        services.tier_save(tier=Tier(program=program, name="Platinum", rank=3, threshold=Decimal("5000")))

    assert (above_gold.value.path, above_gold.value.message) == (
        "threshold",
        "Gold (rank 3) needs a threshold above Silver's 1500 (rank 2): ranks and thresholds must rise together.",
    )
    assert (same_rank.value.path, same_rank.value.message) == ("rank", "Rank 3 is taken by both Gold and Platinum.")
    assert _state(program) == before


def test_moves_count_the_members_a_ladder_change_would_move(ladder):
    program, bronze, silver, gold = ladder
    silver.threshold = Decimal("650")
    platinum = Tier(program=program, name="Platinum", rank=4, threshold=Decimal("1100"))

    moves = services.tier_ladder_moves(program=program, tiers=[bronze, silver, gold, platinum])

    assert (moves.up, moves.down, moves.total) == (1, 1, 2)  # 1200 → Platinum; 600 → Bronze


def test_the_admin_shows_how_many_members_move_and_saves_only_when_confirmed(admin_client, ladder):
    program, _bronze, silver, _gold = ladder
    url = reverse("admin:loyalty_tier_change", args=[silver.pk])
    form = {"program": program.pk, "name": "Silver", "rank": 2, "threshold": "650", "multiplier": "1"}

    first = admin_client.post(url, form)
    broken = admin_client.post(url, {**form, "threshold": "1000", "confirm_moves": "on"})
    confirmed = admin_client.post(url, {**form, "confirm_moves": "on"})

    assert first.status_code == 200
    assert "This ladder would move 1 member(s) to another tier at the next recalculation (0 up, 1 down)." in (
        first.content.decode()
    )
    assert broken.status_code == 200
    assert "Gold (rank 3) needs a threshold above Silver&#x27;s 1000" in broken.content.decode()
    assert confirmed.status_code == 302
    assert Tier.objects.get(pk=silver.pk).threshold == Decimal("650")


def test_the_program_page_checks_the_whole_ladder_of_its_tier_inline(admin_client, ladder):
    program, bronze, silver, gold = ladder
    url = reverse("admin:loyalty_program_change", args=[program.pk])
    page = admin_client.get(url)
    form = {key: value for key, value in page.context["adminform"].form.initial.items() if value is not None}
    form.update({"currency_earning_rates": "{}", "excluded_product_tags": "[]"})
    prefix = "tiers"
    rows = {f"{prefix}-TOTAL_FORMS": "3", f"{prefix}-INITIAL_FORMS": "3"}
    for index, tier in enumerate((bronze, silver, gold)):
        rows.update(
            {
                f"{prefix}-{index}-id": tier.pk,
                f"{prefix}-{index}-program": program.pk,
                f"{prefix}-{index}-name": tier.name,
                f"{prefix}-{index}-rank": tier.rank,
                f"{prefix}-{index}-threshold": str(tier.threshold),
                f"{prefix}-{index}-multiplier": "1",
            }
        )

    swapped = admin_client.post(url, {**form, **rows, f"{prefix}-1-threshold": "2000"})

    assert swapped.status_code == 200
    assert "Gold (rank 3) needs a threshold above Silver&#x27;s 2000" in swapped.content.decode()
    assert Tier.objects.get(pk=silver.pk).threshold == Decimal("500")


def test_the_tier_api_refuses_an_inconsistent_ladder_with_its_path(ladder):
    program, *_ = ladder
    client = APIClient()
    client.force_authenticate(UserFactory(username="staff"))

    response = client.post(
        "/api/v1/loyalty/tiers/", {"program": program.pk, "name": "Iron", "rank": 0, "threshold": "100"}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "path": "threshold",
            "message": "Bronze (rank 1) needs a threshold above Iron's 100.00 (rank 0): ranks and thresholds must "
            "rise together.",
            "code": "tier_ladder",
        }
    ]
    assert Tier.objects.filter(program=program).count() == 3
