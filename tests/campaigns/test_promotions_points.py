"""
A campaign's points measure: bonus points a campaign awards on redemption are counted by its `points` limits (the
platform's limit counters), refused or reduced when they would cross it, and given back when a rollback takes the
points back from the member — exactly what was taken back, in the rollback's transaction.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from apps.campaigns.models import Limit, LimitCounter, Redemption
from apps.campaigns.promotions import services
from apps.campaigns.promotions.admin import LimitForm
from apps.campaigns.promotions.eligibility import promotions_evaluate
from apps.loyalty.models import Balance, PointLot
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def _bonus_campaign(points=100, *, limit="250", action="refuse", period="total", scope="campaign", **fields):
    return campaign_with(
        "Welcome bonus",
        automatic=True,
        incentives=[{"kind": "bonus_points", "points": points}],
        limits=[{"measure": "points", "limit": Decimal(limit), "action": action, "period": period, "scope": scope}],
        **fields,
    )


def _redeem(customer, total="200.00", **extra):
    return services.redemption_redeem(cart=cart(("X", 1, total)), customer=customer, codes=[], **extra)


def _points(customer):
    return sum(
        lot.amount - lot.reversed_amount
        for lot in PointLot.objects.filter(membership__customer=customer, source_type="promotion")
    )


def test_bonus_points_are_awarded_until_the_campaigns_points_limit_refuses():
    program_make()
    _bonus_campaign()
    alice, bob, carol = CustomerFactory(), CustomerFactory(), CustomerFactory()

    _redeem(alice)
    _redeem(bob)
    with pytest.raises(DomainError) as refused:
        _redeem(carol)
    answer = promotions_evaluate(cart=cart(("X", 1, "200.00")), customer=carol, codes=[])

    assert (_points(alice), _points(bob), _points(carol)) == (100, 100, 0)
    assert refused.value.code == "budget_exhausted"
    assert answer.skipped[0].refusal.message == "the budget of 250 loyalty points is used up"
    assert LimitCounter.objects.get().used == Decimal("200")
    assert Balance.objects.get(membership__customer=alice).active == 100


def test_a_reduce_limit_awards_what_is_left_and_a_per_customer_daily_limit_counts_each_member():
    program_make()
    _bonus_campaign(points=100, limit="250", action="reduce")
    alice, bob, carol = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer in (alice, bob, carol):
        _redeem(customer)
    assert (_points(alice), _points(bob), _points(carol)) == (100, 100, 50)
    assert list(Redemption.objects.order_by("pk").values_list("items__points", flat=True)) == [100, 100, 50]


def test_a_partial_rollback_takes_back_that_share_of_the_points_and_frees_exactly_that_room():
    program_make()
    _bonus_campaign(points=100, limit="250")
    alice, bob, carol = CustomerFactory(), CustomerFactory(), CustomerFactory()
    first = _redeem(alice, total="200.00")
    _redeem(bob)

    services.redemption_rollback(redemption=first, amount=Decimal("50.00"))  # a quarter of the order
    after_partial = (_points(alice), LimitCounter.objects.get().used)
    with pytest.raises(DomainError):
        _redeem(carol)  # 200 - 25 = 175 used: 75 left, less than 100
    services.redemption_rollback(redemption=first, amount=Decimal("30.00"))  # 80.00 of 200.00 in all: 40 points
    after_second = (_points(alice), LimitCounter.objects.get().used)
    services.redemption_rollback(redemption=first)  # the rest
    after_whole = (_points(alice), LimitCounter.objects.get().used)
    third = _redeem(carol)

    assert after_partial == (75, Decimal("175"))
    assert after_second == (60, Decimal("160"))
    assert after_whole == (0, Decimal("100"))
    assert (third.status, _points(carol), LimitCounter.objects.get().used) == ("redeemed", 100, Decimal("200"))


def test_points_kept_by_the_return_policy_keep_their_room():
    program_make(return_policy="pending_only")  # active points are not taken back
    _bonus_campaign(points=100, limit="250")
    alice = CustomerFactory()
    redemption = _redeem(alice)

    services.redemption_rollback(redemption=redemption)

    assert _points(alice) == 100
    assert LimitCounter.objects.get().used == Decimal("100")  # still given: still counted


def test_a_reservation_holds_points_room_without_awarding_and_redeem_awards_once():
    program_make()
    _bonus_campaign(points=100, limit="100")
    alice, bob = CustomerFactory(), CustomerFactory()
    services.redemption_reserve(cart=cart(("X", 1, "200.00")), customer=alice, codes=[], session="s-1")
    held = (_points(alice), LimitCounter.objects.get().used)
    with pytest.raises(DomainError) as refused:
        _redeem(bob)
    _redeem(alice, session="s-1")

    assert held == (0, Decimal("100"))
    assert refused.value.code == "budget_exhausted"
    assert (_points(alice), LimitCounter.objects.get().used) == (100, Decimal("100"))


def test_bonus_points_need_a_member_or_an_enrolling_program():
    program_make(auto_enroll=False)
    _bonus_campaign()
    answer = promotions_evaluate(cart=cart(("X", 1, "200.00")), customer=CustomerFactory(), codes=[])
    anonymous = promotions_evaluate(cart=cart(("X", 1, "200.00")), customer=None, codes=[])
    assert [candidate.refusal.reason for candidate in answer.skipped] == ["not_a_member"]
    assert [candidate.refusal.reason for candidate in anonymous.skipped] == ["customer_required"]
    assert LimitCounter.objects.count() == 0


def test_points_limits_and_bonus_incentives_are_validated_with_their_fields():
    campaign = campaign_with("Plain", automatic=True, incentives=[{"kind": "free_shipping"}])
    for fields, path in (
        ({"measure": "points", "limit": Decimal("10.5")}, "limit"),
        ({"measure": "redemptions", "limit": Decimal("5"), "action": "reduce"}, "action"),
    ):
        with pytest.raises(Exception) as error:
            services.limit_create(campaign=campaign, **fields)
        assert list(error.value.message_dict) == [path]
    with pytest.raises(Exception) as missing:
        services.incentive_create(campaign=campaign, kind="bonus_points")
    with pytest.raises(Exception) as huge:
        services.incentive_create(campaign=campaign, kind="bonus_points", points=2_000_000)
    assert list(missing.value.message_dict) == ["points"]
    assert list(huge.value.message_dict) == ["points"]
    reduce = services.limit_create(campaign=campaign, measure="points", limit=Decimal("500"), action="reduce")
    form = LimitForm(
        data={"measure": "points", "limit": "12.5", "period": "day", "scope": "campaign", "action": "refuse"}
    )
    assert not form.is_valid() and list(form.errors) == ["limit"]
    assert (reduce.measure, reduce.action, Limit.objects.filter(campaign=campaign).count()) == ("points", "reduce", 1)


def test_points_limits_through_the_api_need_the_permission_and_answer_errors_with_paths():
    campaign = _bonus_campaign()
    nobody = APIClient()
    nobody.force_authenticate(UserFactory(username="viewer", is_staff=True, is_superuser=False))
    forbidden = nobody.post(
        "/api/v1/promotion-limits/", {"campaign": campaign.pk, "measure": "points", "limit": "5"}, format="json"
    )
    marketer = UserFactory(username="marketer", is_staff=True, is_superuser=False)
    marketer.user_permissions.add(*Permission.objects.filter(content_type__app_label="campaigns"))
    api = APIClient()
    api.force_authenticate(marketer)
    bad = api.post(
        "/api/v1/promotion-limits/", {"campaign": campaign.pk, "measure": "points", "limit": "2.5"}, format="json"
    )
    made = api.post(
        "/api/v1/promotion-limits/",
        {"campaign": campaign.pk, "measure": "points", "limit": "1000", "period": "day", "action": "reduce"},
        format="json",
    )

    assert forbidden.status_code == 403
    assert bad.status_code == 400 and [error["path"] for error in bad.json()["errors"]] == ["limit"]
    assert made.status_code == 201, made.json()
    assert (made.json()["measure"], made.json()["usage"]["used"]) == ("points", "0")
    assert campaign.limits.count() == 2  # the fixture's, and the marketer's; not the viewer's
