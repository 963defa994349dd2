"""The cockpit in Chromium at 1440 and 390 px: confirm before spending, pending per day, used codes, no overflow."""

from decimal import Decimal

import pytest

from apps.loyalty import services
from apps.loyalty.cockpit import cockpit_path
from apps.loyalty.models import Balance, Redemption, Reward
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_the_cockpit_confirms_before_spending_and_fits_a_phone(live_server, page, screenshot):
    program = program_make(name="Coffee Club", referrer_bonus=100, referee_bonus=50)
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    services.points_award(membership=membership, points=500, reason="Welcome")
    for key, amount in (("a", 40), ("b", 35)):
        services.points_earn(
            membership=membership, amount=amount, source_type="order", source_key=f"order:{key}", pending_days=14
        )
    voucher = Reward.objects.create(
        program=program,
        name="Five off your next order of freshly roasted single-origin beans",
        kind="fixed_discount",
        value=Decimal("5"),
        points_cost=200,
    )
    coffee = Reward.objects.create(program=program, name="Free espresso", kind="free_product", points_cost=60)
    used = services.reward_redeem(membership=membership, reward=coffee)
    services.redemption_use(code=used.code, channel="store")

    page.goto(live_server.url + cockpit_path(membership))
    assert page.get_by_test_id("pending").inner_text() == "75"
    assert page.get_by_test_id("pending-next").inner_text().startswith("Next: 75 points on ")
    assert page.get_by_test_id("used-code").inner_text().startswith(f"{used.code} · Free espresso")
    assert page.get_by_test_id("reward-value").first.inner_text() == "$5.00 USD"

    page.get_by_text("Redeem for 200 pts").click()
    confirm = page.get_by_test_id(f"redeem-{voucher.pk}").get_by_test_id("confirm-text")
    assert confirm.inner_text() == (
        "Spend 200 of your 440 points on Five off your next order of freshly roasted single-origin beans "
        "($5.00 USD)? You keep 240 points."
    )
    assert Redemption.objects.count() == 1  # the confirmation opened, nothing spent yet
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"cockpit-confirm-{width}")

    page.get_by_role("button", name="Yes, spend 200 points").click()
    page.get_by_test_id("message").wait_for()
    assert Balance.objects.get(pk=membership.pk).active == 240
    assert page.get_by_test_id("balance").inner_text() == "240"
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"cockpit-redeemed-{width}")
