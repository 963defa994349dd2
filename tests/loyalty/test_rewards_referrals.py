from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from apps.customers.models import DomainEvent
from apps.loyalty import services
from apps.loyalty.choices import RedemptionStatus
from apps.loyalty.models import Balance, PointLot, Redemption, Referral, Reward, Tier
from loyalty_site.lib.errors import DomainError
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import assert_ledger_consistent, program_make

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)


def _member(program, points=0):
    membership, _ = services.member_join(customer=CustomerFactory(), program=program)
    if points:
        services.points_award(membership=membership, points=points, reason="seed", key=f"seed-{membership.pk}")
    return membership


def test_a_code_is_used_once_and_the_qr_payload_finds_it(program):
    membership = _member(program, 100)
    reward = Reward.objects.create(program=program, name="5 off", kind="fixed_discount", value=5, points_cost=60)
    redemption = services.reward_redeem(membership=membership, reward=reward)

    used = services.redemption_use(code=redemption.qr_payload, channel="store")
    with pytest.raises(DomainError) as error:
        services.redemption_use(code=redemption.code.lower())

    assert (used.status, used.used_channel) == (RedemptionStatus.USED, "store")
    assert error.value.code == "code_used"
    assert assert_ledger_consistent(membership).active == 40


def test_per_customer_limit_tier_targeting_and_validity_are_enforced(program):
    gold = Tier.objects.create(program=program, name="Gold", rank=2, threshold=1000)
    membership = _member(program, 500)
    limited = Reward.objects.create(
        program=program, name="Coffee", kind="free_product", points_cost=10, per_customer_limit=1
    )
    gold_only = Reward.objects.create(program=program, name="Lounge", kind="material_prize", points_cost=10)
    gold_only.tiers.add(gold)
    later = Reward.objects.create(program=program, name="Xmas", kind="gift_card", points_cost=10, valid_from=T0)

    services.reward_redeem(membership=membership, reward=limited, at=T0 - timedelta(days=1))
    codes = []
    for reward in (limited, gold_only, later):
        with pytest.raises(DomainError) as error:
            services.reward_redeem(membership=membership, reward=reward, at=T0 - timedelta(days=1))
        codes.append(error.value.code)

    assert codes == ["limit_reached", "tier_not_eligible", "reward_not_started"]
    assert Redemption.objects.count() == 1
    assert Balance.objects.get(pk=membership.pk).active == 490
    with time_machine.travel(T0, tick=False):
        assert list(services.rewards_available(membership=membership)) == [limited, later]


def test_rollback_returns_points_to_their_lots_and_the_stock(program):
    membership = _member(program)
    first, _ = services.points_award(membership=membership, points=30, reason="a", key="a", at=T0)
    second, _ = services.points_award(membership=membership, points=30, reason="b", key="b", at=T0 + timedelta(hours=1))
    reward = Reward.objects.create(program=program, name="Bag", kind="material_prize", points_cost=45, stock=3)
    redemption = services.reward_redeem(membership=membership, reward=reward)
    assert dict(PointLot.objects.values_list("pk", "remaining")) == {first.pk: 0, second.pk: 15}
    assert redemption.fulfilment_status == "pending"

    services.redemption_rollback(redemption=redemption)
    services.redemption_rollback(redemption=redemption)  # a replay changes nothing

    assert dict(PointLot.objects.values_list("pk", "remaining")) == {first.pk: 30, second.pk: 30}
    reward.refresh_from_db()
    assert reward.stock == 3
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.lifetime_spent) == (60, 0)
    with pytest.raises(DomainError):
        services.redemption_use(code=redemption.code)


def test_referral_gives_both_bonuses_once_with_a_cap_and_refuses_self_referral():
    program = program_make(referrer_bonus=100, referee_bonus=50, referral_cap=1)
    referrer = _member(program)
    first, second = CustomerFactory(), CustomerFactory()

    referral = services.referral_register(referee=first, code=referrer.referral_code.lower())
    capped = services.referral_register(referee=second, code=referrer.referral_code)
    with pytest.raises(DomainError) as self_error:
        services.referral_register(referee=referrer.customer, code=referrer.referral_code)
    with pytest.raises(DomainError) as twice_error:
        services.referral_register(referee=first, code=referrer.referral_code)

    assert (referral.status, capped.status) == ("rewarded", "capped")
    assert (self_error.value.code, twice_error.value.code) == ("self_referral", "already_referred")
    assert Balance.objects.get(pk=referrer.pk).active == 100
    first_membership = services.membership_for(first, program)
    assert (Balance.objects.get(pk=first_membership.pk).active, first_membership.referred_by_id) == (50, referrer.pk)
    assert DomainEvent.objects.filter(name="referral.registered").count() == 2
    assert DomainEvent.objects.filter(name="member.joined").count() == 3


def test_referral_requiring_a_purchase_pays_on_the_first_order():
    from apps.loyalty.tasks import order_earn_task

    program = program_make(referrer_bonus=100, referee_bonus=50, referral_requires_purchase=True)
    referrer = _member(program)
    referee = CustomerFactory()
    referral = services.referral_register(referee=referee, code=referrer.referral_code)
    assert (referral.status, Balance.objects.get(pk=referrer.pk).active) == ("registered", 0)

    order_earn_task(make_order(referee, total="10.00").pk)

    assert Referral.objects.get().status == "rewarded"
    assert Balance.objects.get(pk=referrer.pk).active == 100
    assert Balance.objects.get(pk=services.membership_for(referee).pk).active == 60
    assert program.points_per_unit == Decimal("1")


def test_signals_enqueue_earning_through_the_task(settings, django_capture_on_commit_callbacks):
    from apps.customers import services as customer_services

    settings.TASKS_SYNC = True
    program = program_make()
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        order = make_order(customer, total="80.00")
    with django_capture_on_commit_callbacks(execute=True):
        customer_services.refund_create(order=order, amount="20.00")

    membership = services.membership_for(customer, program)
    assert Balance.objects.get(pk=membership.pk).active == 60


def test_a_tier_price_applies_to_members_of_that_tier(program):
    from apps.loyalty.models import RewardTierPrice

    gold = Tier.objects.create(program=program, name="Gold", rank=2, threshold=1000)
    reward = Reward.objects.create(program=program, name="Mug", kind="material_prize", points_cost=100)
    RewardTierPrice.objects.create(reward=reward, tier=gold, points_cost=60)
    regular, vip = _member(program, 100), _member(program, 100)
    services.tier_set(membership=vip, tier=gold)

    paid = [services.reward_redeem(membership=m, reward=reward).points_spent for m in (regular, vip)]

    assert paid == [100, 60]
    assert [Balance.objects.get(pk=m.pk).active for m in (regular, vip)] == [0, 40]
