"""Customer fraud status in loyalty: blocked earns and redeems nothing (services, API, cockpit); flagged is held."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from apps.customers import services as customer_services
from apps.customers.choices import CustomerStatus
from apps.customers.models import Customer, CustomerStatusChange
from apps.loyalty import services
from apps.loyalty.choices import HoldStatus, LotStatus, ReferralStatus
from apps.loyalty.cockpit import cockpit_path
from apps.loyalty.models import Balance, LedgerEntry, PointHold, PointLot, Redemption, Referral, Reward
from apps.platform.models import AuditEntry
from loyalty_site.lib.errors import DomainError
from loyalty_site.lib.identity import email_normalize, phones_match
from tests.factories import CustomerFactory, UserFactory, make_order
from tests.loyalty.conftest import assert_ledger_consistent, program_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    program = program_make()
    membership, _ = services.member_join(customer=CustomerFactory(), program=program)
    services.points_award(membership=membership, points=100, reason="seed", key="seed")
    return membership


def _set(customer: Customer, status: str, reason: str = "test") -> Customer:
    return customer_services.customer_status_set(customer=customer, status=status, reason=reason, cause="test")


def test_status_change_is_recorded_with_reason_history_and_audit(member):
    user = UserFactory()
    customer = customer_services.customer_status_set(
        customer=member.customer, status="blocked", reason="Chargebacks", user=user, cause="admin"
    )
    again = customer_services.customer_status_set(customer=customer, status="blocked", reason="again", user=user)

    assert (again.status, again.status_reason) == ("blocked", "Chargebacks")
    change = CustomerStatusChange.objects.get()
    assert (change.old_status, change.new_status, change.reason, change.actor, change.cause) == (
        "active",
        "blocked",
        "Chargebacks",
        user,
        "admin",
    )
    entry = AuditEntry.objects.get(object_type="customers.customer", action="status_changed")
    assert entry.changes["status"] == {"old": "active", "new": "blocked"}


def test_status_needs_a_known_status_and_a_reason(member):
    for status, reason, path in (("frozen", "x", "status"), ("blocked", "  ", "reason")):
        with pytest.raises(DomainError) as error:
            _set(member.customer, status, reason)
        assert error.value.path == path
    assert Customer.objects.get(pk=member.customer_id).status == CustomerStatus.ACTIVE
    assert CustomerStatusChange.objects.count() == 0


def test_blocked_customer_earns_nothing_from_orders_awards_or_referrals(member):
    _set(member.customer, "blocked")
    order = make_order(member.customer, total="50.00")

    assert services.order_points_earn(order=order) == []
    with pytest.raises(DomainError) as error:
        services.points_award(membership=member, points=10, reason="goodwill")
    assert error.value.code == "customer_blocked"
    with pytest.raises(DomainError) as referral_error:
        services.referral_register(referee=CustomerFactory(), code=member.referral_code)
    assert referral_error.value.code == "customer_blocked"
    assert PointLot.objects.filter(membership=member).count() == 1  # the seed only
    assert assert_ledger_consistent(member).active == 100


def test_blocked_customer_redeems_nothing_nor_uses_an_issued_code(member):
    reward = Reward.objects.create(program=member.program, name="Tote", kind="material_prize", points_cost=40)
    issued = services.reward_redeem(membership=member, reward=reward)
    _set(member.customer, "blocked")

    for call in (
        lambda: services.reward_validate(membership=member, reward=reward),
        lambda: services.reward_redeem(membership=member, reward=reward),
        lambda: services.redemption_use(code=issued.code),
    ):
        with pytest.raises(DomainError) as error:
            call()
        assert error.value.code == "customer_blocked"
    assert Redemption.objects.get().status == "issued"
    assert Balance.objects.get(pk=member.pk).active == 60


def test_blocked_customer_is_refused_through_the_api_and_the_cockpit(member, client):
    reward = Reward.objects.create(program=member.program, name="Tote", kind="material_prize", points_cost=40)
    _set(member.customer, "blocked")
    api = APIClient()
    api.force_authenticate(UserFactory())
    base = f"/api/v1/loyalty/customers/{member.customer_id}"

    award = api.post(f"{base}/award/", {"points": 10, "reason": "x"}, format="json")
    redeem = api.post(f"{base}/redeem/", {"reward": reward.pk}, format="json")
    cockpit = client.post(
        f"{cockpit_path(member)}redeem/{reward.pk}/", {"confirm": "spend", "points": "40"}, follow=True
    )

    assert (award.status_code, award.json()["error"]) == (400, "customer_blocked")
    assert (redeem.status_code, redeem.json()["error"]) == (400, "customer_blocked")
    assert b"blocked" in cockpit.content
    assert Redemption.objects.count() == 0
    assert Balance.objects.get(pk=member.pk).active == 100


def test_flagged_customer_points_stay_held_until_approved(member):
    _set(member.customer, "flagged", "Velocity")
    services.points_award(membership=member, points=30, reason="goodwill")
    order_lots = services.order_points_earn(order=make_order(member.customer, total="20.00"))
    services.points_activate_due()  # time does not activate held points

    hold = PointHold.objects.get()
    assert (hold.source_prefix, hold.status, hold.reason) == ("", HoldStatus.OPEN, "Customer flagged: Velocity")
    assert [(row.status, row.held) for row in PointLot.objects.filter(hold=hold)] == [("pending", True)] * 2
    balance = assert_ledger_consistent(member)
    assert (balance.active, balance.pending) == (100, 30 + order_lots[0].amount)

    services.points_hold_release(hold=hold, user=UserFactory())
    services.points_hold_release(hold=hold)  # a second approval changes nothing

    balance = assert_ledger_consistent(member)
    assert (balance.active, balance.pending) == (150, 0)
    hold.refresh_from_db()
    assert hold.status == HoldStatus.RELEASED and hold.resolved_by is not None


def test_rejected_hold_reverses_exactly_what_it_held(member):
    services.points_award(membership=member, points=25, reason="order bonus", key="order-77")
    hold = services.points_hold(membership=member, source_prefix="admin:order-77", reason="velocity", cause="rule:1")
    services.points_hold(membership=member, source_prefix="admin:order-77", reason="again")  # idempotent
    held = assert_ledger_consistent(member)
    assert (held.active, held.pending, held.lifetime_earned) == (100, 25, 125)

    services.points_hold_reject(hold=hold)

    balance = assert_ledger_consistent(member)
    assert (balance.active, balance.pending, balance.lifetime_earned) == (100, 0, 100)
    lot = PointLot.objects.get(source_key="admin:order-77")
    assert (lot.status, lot.remaining, lot.reversed_amount, lot.held) == (LotStatus.CANCELLED, 0, 25, False)
    assert LedgerEntry.objects.filter(kind="hold").count() == 1


def test_gmail_dots_plus_tags_and_phone_are_the_same_person():
    assert email_normalize("J.Doe+promo@GoogleMail.com") == "jdoe@gmail.com"
    assert email_normalize("j.doe+x@example.com") == "j.doe@example.com"
    assert phones_match("+351 912-345-678", "912345678")
    assert not phones_match("912345678", "912345679")


@pytest.mark.parametrize(
    "referrer_email,referee_email,referee_phone",
    [
        ("jane.doe@gmail.com", "janedoe+friend@gmail.com", ""),
        ("jane.doe@gmail.com", "J.A.N.E.D.O.E@googlemail.com", ""),
        ("a@example.com", "b@example.com", "+1 (555) 010-9999"),
    ],
)
def test_self_referral_variants_are_refused(referrer_email, referee_email, referee_phone):
    program = program_make(referrer_bonus=10, referee_bonus=5)
    referrer, _ = services.member_join(
        customer=CustomerFactory(email=referrer_email, phone="5550109999"), program=program
    )
    referee = CustomerFactory(email=referee_email, phone=referee_phone)

    with pytest.raises(DomainError) as error:
        services.referral_register(referee=referee, code=referrer.referral_code, ip="10.0.0.1")

    assert error.value.code == "self_referral"
    assert Referral.objects.count() == 0


def test_refused_referral_takes_back_both_bonuses_exactly():
    program = program_make(referrer_bonus=20, referee_bonus=10)
    referrer, _ = services.member_join(customer=CustomerFactory(), program=program)
    referral = services.referral_register(referee=CustomerFactory(), code=referrer.referral_code, ip="10.1.1.1")
    assert referral.status == ReferralStatus.REWARDED and referral.ip == "10.1.1.1"

    services.referral_refuse(referral=referral, reason="same IP")
    services.referral_refuse(referral=referral, reason="same IP")

    referral.refresh_from_db()
    assert (referral.status, referral.refused_reason) == (ReferralStatus.REFUSED, "same IP")
    for membership in (referrer, services.membership_for(referral.referee, program)):
        balance = assert_ledger_consistent(membership)
        assert (balance.active, balance.lifetime_earned) == (0, 0)


def test_status_api_needs_its_permission_and_changes_nothing_when_refused(member):
    plain, allowed = UserFactory(is_superuser=False), UserFactory(is_superuser=False)
    for user in (plain, allowed):
        user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    allowed.user_permissions.add(Permission.objects.get(codename="set_customer_status"))
    url = f"/api/v1/customers/{member.customer_id}/status/"
    body = {"status": "flagged", "reason": "Many accounts"}

    refused = APIClient()
    refused.force_authenticate(plain)
    denied = refused.post(url, body, format="json")
    assert denied.status_code == 403
    assert Customer.objects.get(pk=member.customer_id).status == "active"

    client = APIClient()
    client.force_authenticate(allowed)
    bad = client.post(url, {"status": "frozen", "reason": "x"}, format="json")
    done = client.post(url, body, format="json")
    assert (bad.status_code, bad.json()["errors"][0]["path"]) == (400, "status")
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["status_reason"]) == ("flagged", "Many accounts")
