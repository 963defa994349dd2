import pytest

from apps.loyalty import services
from apps.loyalty.cockpit import cockpit_path
from apps.loyalty.models import Balance, LedgerEntry, Redemption, Reward
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    program = program_make()
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    services.points_award(membership=membership, points=120, reason="seed")
    return membership


def test_staff_scan_checks_then_confirms_a_code_once(client, member):
    reward = Reward.objects.create(program=member.program, name="Coffee", kind="free_product", points_cost=50)
    redemption = services.reward_redeem(membership=member, reward=reward)
    client.force_login(UserFactory())

    checked = client.get("/admin/loyalty/scan/", {"code": redemption.qr_payload})
    confirmed = client.post("/admin/loyalty/scan/", {"code": redemption.code, "confirm": "1"}, follow=True)
    again = client.post("/admin/loyalty/scan/", {"code": redemption.code, "confirm": "1"}, follow=True)

    assert b"Confirm redemption" in checked.content
    assert b"Confirmed: Coffee" in confirmed.content
    assert b"already been used" in again.content
    redemption.refresh_from_db()
    assert (redemption.status, redemption.used_channel) == ("used", "store")


def test_staff_scan_needs_a_staff_login(client):
    response = client.get("/admin/loyalty/scan/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_cockpit_shows_balance_and_a_tampered_token_is_404(client, member):
    path = cockpit_path(member)
    ok = client.get(path)
    tampered = client.get(path[:-3] + "xx/")
    assert ok.status_code == 200
    assert b'data-testid="balance">120<' in ok.content
    assert member.referral_code.encode() in ok.content
    assert tampered.status_code == 404


def test_cockpit_redeem_issues_a_code_with_a_qr_svg(client, member):
    reward = Reward.objects.create(program=member.program, name="Tote", kind="material_prize", points_cost=100)
    response = client.post(
        f"{cockpit_path(member)}redeem/{reward.pk}/", {"confirm": "spend", "points": "100"}, follow=True
    )
    redemption = Redemption.objects.get()
    assert redemption.code.encode() in response.content
    assert b"<svg" in response.content
    assert Balance.objects.get(pk=member.pk).active == 20


def test_admin_pages_render_and_adjust_records_the_staff_user(client, member):
    user = UserFactory()
    client.force_login(user)
    for url in [
        "/admin/loyalty/program/",
        "/admin/loyalty/membership/",
        f"/admin/loyalty/membership/{member.pk}/change/",
        "/admin/loyalty/pointlot/",
        "/admin/loyalty/ledgerentry/",
        "/admin/loyalty/reward/",
        "/admin/loyalty/redemption/",
        "/admin/loyalty/referral/",
        "/admin/loyalty/earningrule/",
        "/admin/loyalty/tier/",
    ]:
        assert client.get(url).status_code == 200, url
    change = client.get(f"/admin/loyalty/membership/{member.pk}/change/")
    assert b"Why do I have this balance?" in change.content

    response = client.post(f"/admin/loyalty/membership/{member.pk}/adjust/", {"points": -20, "reason": "Broken mug"})
    refused = client.post(f"/admin/loyalty/membership/{member.pk}/adjust/", {"points": -500, "reason": "Too much"})

    assert response.status_code == 302
    assert refused.status_code == 200
    entry = LedgerEntry.objects.filter(kind="spend").get()
    assert (entry.active_delta, entry.reason, entry.actor_id) == (-20, "Broken mug", user.pk)
    assert Balance.objects.get(pk=member.pk).active == 100


def test_demo_load_is_idempotent():
    import io

    from apps.loyalty import demo
    from apps.loyalty.models import EarningRule, Program, Tier

    demo.load(stdout=io.StringIO())
    out = io.StringIO()
    demo.load(stdout=out)

    assert (Program.objects.count(), Tier.objects.count(), EarningRule.objects.count(), Reward.objects.count()) == (
        1,
        3,
        7,
        6,
    )
    assert "Kept program Rewards Club" in out.getvalue()
    assert list(Reward.objects.get(name="Gold lounge coffee").tiers.values_list("name", flat=True)) == ["Gold"]
