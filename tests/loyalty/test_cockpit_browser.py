from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.loyalty import services
from apps.loyalty.cockpit import cockpit_path
from apps.loyalty.models import Balance, Redemption, Reward, Tier
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_sees_balance_pending_expiry_tier_and_redeems_with_a_qr_code(live_server, page, screenshot):
    program = program_make(
        name="Coffee Club", expiry_policy="days_after_activation", expiry_days=2, referrer_bonus=100, referee_bonus=50
    )
    Tier.objects.create(program=program, name="Bronze", rank=1, threshold=Decimal("0"))
    Tier.objects.create(program=program, name="Silver", rank=2, threshold=Decimal("500"))
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    services.points_award(membership=membership, points=300, reason="Welcome")
    services.points_earn(
        membership=membership, amount=40, source_type="order", source_key="order:test:base", pending_days=14
    )
    services.points_expiring_notify()
    Reward.objects.create(program=program, name="Free espresso", kind="free_product", points_cost=120)
    Reward.objects.create(program=program, name="Grinder", kind="material_prize", points_cost=5000)

    page.goto(live_server.url + cockpit_path(membership))

    assert page.get_by_test_id("balance").inner_text() == "300"
    assert page.get_by_test_id("pending").inner_text() == "40"
    activates = (timezone.now() + timedelta(days=14)).strftime("%-d %b %Y")
    assert page.get_by_test_id("pending-next").inner_text() == f"Next: 40 points on {activates}"
    assert page.get_by_test_id("expiring").inner_text() == "300"
    assert page.get_by_test_id("tier").inner_text() == "Bronze"
    assert page.get_by_test_id("tier-progress").inner_text() == "160 more points to Silver"
    assert membership.referral_code in page.get_by_test_id("referral-link").input_value()
    assert page.get_by_role("button", name="Redeem for 5000 pts").is_disabled()
    screenshot("loyalty-cockpit")

    page.get_by_text("Redeem for 120 pts").click()
    assert Redemption.objects.count() == 0  # opening the confirmation spends nothing
    page.get_by_role("button", name="Yes, spend 120 points").click()
    expect(page.get_by_test_id("balance")).to_have_text("180")  # the reply has arrived: read the database after it

    redemption = Redemption.objects.get()
    assert redemption.code in page.get_by_test_id("message").inner_text()
    assert page.get_by_test_id("balance").inner_text() == "180"
    code_card = page.get_by_test_id("code")
    assert code_card.locator("svg").count() == 1
    assert redemption.code in code_card.inner_text()
    assert Balance.objects.get(pk=membership.pk).active == 180
    screenshot("loyalty-cockpit-redeemed")


def test_staff_types_a_qr_code_and_confirms_the_in_store_redemption(live_server, page, screenshot):
    from tests.factories import UserFactory

    program = program_make()
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    services.points_award(membership=membership, points=100, reason="seed")
    reward = Reward.objects.create(program=program, name="Free espresso", kind="free_product", points_cost=60)
    redemption = services.reward_redeem(membership=membership, reward=reward)
    staff = UserFactory(username="till")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/admin/login/?next=/admin/loyalty/scan/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", "pass12345")
    page.click("input[type=submit]")
    page.fill("#id_code", redemption.qr_payload)
    page.get_by_role("button", name="Check code").click()

    assert page.get_by_test_id("scan-status").inner_text() == "Issued"
    screenshot("loyalty-staff-scan")
    page.get_by_test_id("confirm").click()

    expect(page.locator(".messagelist")).to_contain_text("Confirmed: Free espresso")  # waits for the reply
    redemption.refresh_from_db()
    assert (redemption.status, redemption.used_channel, redemption.used_by_id) == ("used", "store", staff.pk)
    assert errors == []


def test_the_cockpit_is_painted_in_the_brand_at_both_widths(live_server, page, screenshot):
    from apps.customers.messaging.templating.models import Brand

    Brand.objects.create(name="Acme Coffee", primary_colour="#0b6e4f", font_family="Georgia, serif")
    program = program_make(name="Coffee Club")
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    services.points_award(membership=membership, points=300, reason="Welcome")
    Reward.objects.create(program=program, name="Free espresso", kind="free_product", points_cost=120)

    page.goto(live_server.url + cockpit_path(membership))

    expect(page.get_by_test_id("brand")).to_contain_text("Acme Coffee · Coffee Club")
    summary = page.get_by_text("Redeem for 120 pts")
    assert summary.evaluate("(e) => getComputedStyle(e).backgroundColor") == "rgb(11, 110, 79)"
    assert summary.evaluate("(e) => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    assert "Georgia" in page.evaluate("getComputedStyle(document.body).fontFamily")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        screenshot(f"loyalty-cockpit-brand-{width}")
