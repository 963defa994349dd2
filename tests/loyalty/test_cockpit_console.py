"""The cockpit (issue 15): confirm before spending, pending points per activation day, used codes, money rewards."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from apps.loyalty import selectors, services
from apps.loyalty.cockpit import cockpit_path
from apps.loyalty.models import Balance, PointLot, Redemption, Reward
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    program = program_make()
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    services.points_award(membership=membership, points=300, reason="seed")
    return membership


def _redeem(client, member, reward, **fields):
    return client.post(f"{cockpit_path(member)}redeem/{reward.pk}/", fields, follow=True)


def test_redeeming_without_the_confirmation_spends_nothing(client, member):
    reward = Reward.objects.create(program=member.program, name="Tote", kind="material_prize", points_cost=100)

    response = _redeem(client, member, reward)

    assert b"Nothing was spent: confirm to redeem Tote." in response.content
    assert Redemption.objects.count() == 0
    assert Balance.objects.get(pk=member.pk).active == 300


def test_a_price_changed_since_the_page_was_shown_asks_again(client, member):
    reward = Reward.objects.create(program=member.program, name="Tote", kind="material_prize", points_cost=100)
    Reward.objects.filter(pk=reward.pk).update(points_cost=150)  # edited while the member was deciding

    response = _redeem(client, member, reward, confirm="spend", points="100")

    assert b"Nothing was spent: Tote now costs 150 points. Check it again." in response.content
    assert Redemption.objects.count() == 0 and Balance.objects.get(pk=member.pk).active == 300


def test_the_page_asks_before_spending_and_says_what_is_left(client, member):
    Reward.objects.create(
        program=member.program, name="5 off", kind="fixed_discount", value=Decimal("5"), points_cost=120
    )

    page = client.get(cockpit_path(member)).content.decode()

    assert "Spend <strong>120</strong> of your 300 points on 5 off ($5.00 USD)? You keep 180 points." in page
    assert 'name="confirm" value="spend"' in page and 'name="points" value="120"' in page
    assert '<span class="small" data-testid="reward-value">$5.00 USD</span>' in page


def test_confirmed_redemption_spends_the_price_shown(client, member):
    reward = Reward.objects.create(program=member.program, name="Tote", kind="material_prize", points_cost=100)

    _redeem(client, member, reward, confirm="spend", points="100")

    assert Redemption.objects.get().points_spent == 100
    assert Balance.objects.get(pk=member.pk).active == 200


def test_money_rewards_name_their_currency(settings):
    settings.SHOP_CURRENCY = "EUR"
    program = program_make()
    fixed = Reward(program=program, name="5 off", kind="fixed_discount", value=Decimal("5"), points_cost=5)
    percent = Reward(program=program, name="10% off", kind="percentage_discount", value=Decimal("10"), points_cost=5)
    prize = Reward(program=program, name="Tote", kind="material_prize", points_cost=5)
    assert (fixed.value_with_currency, percent.value_with_currency, prize.value_with_currency) == (
        "€5.00 EUR",
        "10%",
        "",
    )


@time_machine.travel("2026-11-30 10:00:00+00:00", tick=False)
def test_pending_points_are_summed_per_activation_day_next_first(client, member):
    for key, amount, days in (("a", 40, 3), ("b", 25, 3), ("c", 10, 9)):
        services.points_earn(
            membership=member, amount=amount, source_type="order", source_key=f"order:{key}", pending_days=days
        )
    PointLot.objects.filter(source_key="order:b").update(activates_at=timezone.now() + timedelta(days=3, hours=2))

    days = selectors.pending_by_day(membership=member)

    assert [(row["day"].isoformat(), row["points"]) for row in days] == [("2026-12-03", 65), ("2026-12-09", 10)]
    page = client.get(cockpit_path(member)).content.decode()
    assert 'data-testid="pending">75<' in page
    assert "Next: <strong>65 points on 3 Dec 2026</strong>" in page


def test_used_codes_stay_in_a_history_and_leave_the_usable_codes(client, member):
    reward = Reward.objects.create(program=member.program, name="Coffee", kind="free_product", points_cost=50)
    used = services.reward_redeem(membership=member, reward=reward)
    services.redemption_use(code=used.code, channel="store")
    usable = services.reward_redeem(membership=member, reward=reward)

    page = client.get(cockpit_path(member)).content.decode()

    history = page[page.index('data-testid="used-codes"') :]
    usable_part = page[: page.index('data-testid="used-codes"')]
    assert used.code in history and usable.code not in history
    assert usable.code in usable_part and used.code not in usable_part
    assert "Used" in history and "(store)" in history
    assert [r.code for r in selectors.redemptions_history(membership=member)] == [used.code]
