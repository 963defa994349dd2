"""
The velocity fields no other test evaluates: `fraud.points_earned`, `fraud.rewards_redeemed`,
`fraud.signups_same_device`, `fraud.signups_same_email_domain`, `fraud.referrals_same_ip` — real activity through
the services, a rule with a threshold: below it nothing happens, at it the action applies with the evidence,
activity outside the window or from another device / domain / IP is not counted.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.campaigns.fraud import services
from apps.campaigns.fraud.models import FraudCase, FraudRule
from apps.customers import services as customer_services
from apps.customers.models import Customer
from apps.loyalty import services as loyalty
from apps.loyalty.choices import ReferralStatus
from apps.loyalty.models import PointHold, Referral, Reward
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import assert_ledger_consistent, program_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
IP_A, IP_B = "203.0.113.7", "198.51.100.9"


def _rule(field: str, trigger: str, action: str, value: int, window: dict) -> FraudRule:
    return services.fraud_rule_save(
        name=f"{field} burst",
        trigger=trigger,
        condition={"field": field, "window": window, "op": "gte", "value": value},
        action=action,
        is_enabled=True,
    )


def _evidence(field: str, value: int, window: dict) -> list[dict]:
    """The evidence of a rule `field in the window >= value` that matched with exactly `value`."""
    return [{"path": "", "field": field, "window": window, "op": "gte", "expected": value, "value": value}]


def _status(customer: Customer) -> str:
    return Customer.objects.get(pk=customer.pk).status


def test_points_earned_holds_the_order_that_reaches_the_threshold_in_the_window(sync):
    program_make()  # 1 point per unit, active at once
    window = {"minutes": 60}
    rule = _rule("fraud.points_earned", "order.created", "hold_points", 100, window)
    customer, other = CustomerFactory(), CustomerFactory()
    with time_machine.travel(NOW - timedelta(minutes=61), tick=False):
        sync(lambda: make_order(customer, total="90.00"))  # 90 < 100, and out of the window later
    with time_machine.travel(NOW, tick=False):
        sync(lambda: make_order(other, total="99.00"))  # another customer's points are not counted
        sync(lambda: make_order(customer, total="60.00"))
        assert not FraudCase.objects.exists()  # 60 in the window (90 + 60 if the old order counted)
        third = sync(lambda: make_order(customer, total="40.00"))

    case = FraudCase.objects.get(customer=customer)
    assert (case.rule_id, case.action) == (rule.pk, "hold_points")
    assert case.evidence == _evidence("fraud.points_earned", 100, window)
    assert case.hold.source_prefix == f"order:{third.pk}:"
    balance = assert_ledger_consistent(loyalty.membership_for(customer))
    assert (balance.active, balance.pending, balance.lifetime_earned) == (150, 40, 190)
    assert PointHold.objects.count() == 1


def test_rewards_redeemed_flags_at_the_threshold_not_below_nor_outside_the_window(sync):
    program = program_make()
    window = {"hours": 1}
    rule = _rule("fraud.rewards_redeemed", "order.created", "flag", 2, window)
    customer, other = CustomerFactory(), CustomerFactory()
    membership, _ = loyalty.member_join(customer=customer, program=program)
    other_membership, _ = loyalty.member_join(customer=other, program=program)
    for member in (membership, other_membership):
        loyalty.points_award(membership=member, points=1000, reason="seed", key=f"seed-{member.pk}")
    reward = Reward.objects.create(program=program, name="Tote", kind="material_prize", points_cost=10)

    with time_machine.travel(NOW - timedelta(hours=2), tick=False):
        loyalty.reward_redeem(membership=membership, reward=reward)  # outside the window
    with time_machine.travel(NOW, tick=False):
        for _index in range(3):
            loyalty.reward_redeem(membership=other_membership, reward=reward)  # another customer's
        loyalty.reward_redeem(membership=membership, reward=reward)
        sync(lambda: make_order(customer, total="5.00"))
        assert not FraudCase.objects.exists()  # 1 in the window
        assert _status(customer) == "active"
        loyalty.reward_redeem(membership=membership, reward=reward)
        sync(lambda: make_order(customer, total="5.00"))

    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id, case.action) == (rule.pk, customer.pk, "flag")
    assert case.evidence == _evidence("fraud.rewards_redeemed", 2, window)
    assert (_status(customer), _status(other)) == ("flagged", "active")


def test_signups_same_device_blocks_the_third_sign_up_on_one_device(sync):
    window = {"minutes": 30}
    rule = _rule("fraud.signups_same_device", "customer.registered", "block", 3, window)

    def signup(email: str, device: str) -> Customer:
        return sync(lambda: customer_services.customer_create(email=email, signup_device=device, signup_ip=IP_A))

    with time_machine.travel(NOW - timedelta(minutes=31), tick=False):
        old = signup("old@example.com", "dev-1")  # out of the window later
    with time_machine.travel(NOW, tick=False):
        first = signup("a@example.com", "dev-1")
        elsewhere = signup("b@example.com", "dev-2")
        no_device = signup("c@example.com", "")
        second = signup("d@example.com", "dev-1")
        assert not FraudCase.objects.exists()  # 2 on dev-1 in the window (the old one is out)
        third = signup("e@example.com", "dev-1")

    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id, case.action) == (rule.pk, third.pk, "block")
    assert case.evidence == _evidence("fraud.signups_same_device", 3, window)
    assert _status(third) == "blocked"
    assert [_status(c) for c in (old, first, elsewhere, no_device, second)] == ["active"] * 5


def test_signups_same_email_domain_flags_at_the_threshold_case_insensitively(sync):
    window = {"hours": 2}
    rule = _rule("fraud.signups_same_email_domain", "customer.registered", "flag", 3, window)

    def signup(email: str) -> Customer:
        return sync(lambda: customer_services.customer_create(email=email))

    with time_machine.travel(NOW - timedelta(hours=2, minutes=1), tick=False):
        old = signup("old@burst.test")
    with time_machine.travel(NOW, tick=False):
        first = signup("a@burst.test")
        others = [signup("b@other.test"), signup("c@sub.burst.test"), signup("d@burst.test.example")]
        second = signup("e@BURST.test")
        assert not FraudCase.objects.exists()  # 2 with burst.test in the window
        third = signup("f@burst.test")

    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id, case.action) == (rule.pk, third.pk, "flag")
    assert case.evidence == _evidence("fraud.signups_same_email_domain", 3, window)
    assert Customer.objects.get(pk=second.pk).email_domain == "burst.test"
    assert _status(third) == "flagged"
    assert [_status(c) for c in (old, first, second, *others)] == ["active"] * 6


def test_referrals_same_ip_refuses_the_referral_that_reaches_the_threshold(sync):
    program = program_make(referrer_bonus=20, referee_bonus=10)
    window = {"minutes": 60}
    rule = _rule("fraud.referrals_same_ip", "referral.registered", "refuse_referral", 3, window)
    referrers = [loyalty.member_join(customer=CustomerFactory(), program=program)[0] for _ in range(4)]

    def refer(referrer, ip: str | None) -> Referral:
        return sync(lambda: loyalty.referral_register(referee=CustomerFactory(), code=referrer.referral_code, ip=ip))

    with time_machine.travel(NOW - timedelta(minutes=61), tick=False):
        old = refer(referrers[0], IP_A)  # out of the window later
    with time_machine.travel(NOW, tick=False):
        first = refer(referrers[1], IP_A)  # different referrers, one IP
        other_ip = refer(referrers[2], IP_B)
        no_ip = refer(referrers[0], None)
        second = refer(referrers[2], IP_A)
        assert not FraudCase.objects.exists()  # 2 from IP_A in the window
        third = refer(referrers[3], IP_A)

    case = FraudCase.objects.get()
    assert (case.rule_id, case.referral_id, case.action) == (rule.pk, third.pk, "refuse_referral")
    assert case.evidence == _evidence("fraud.referrals_same_ip", 3, window)
    statuses = {r.pk: r.status for r in Referral.objects.all()}
    assert statuses[third.pk] == ReferralStatus.REFUSED
    assert [statuses[r.pk] for r in (old, first, other_ip, no_ip, second)] == [ReferralStatus.REWARDED] * 5
    assert assert_ledger_consistent(referrers[3]).active == 0  # the refused referral's bonus taken back
    assert assert_ledger_consistent(referrers[1]).active == 20


def test_landing_form_sign_ups_are_counted_by_email_domain_case_insensitively(sync):
    from apps.campaigns.landing.services import form_submit
    from tests.campaigns.landing_helpers import published_page

    page = published_page()
    window = {"hours": 1}
    rule = _rule("fraud.signups_same_email_domain", "customer.registered", "flag", 2, window)

    def submit(email: str) -> Customer:
        submission, _ = sync(lambda: form_submit(page=page, values={"email": email}, consents=[], ip=IP_A))
        return submission.customer

    with time_machine.travel(NOW, tick=False):
        first = submit("Ann@Corp.TEST")
        other = submit("bob@elsewhere.test")
        assert not FraudCase.objects.exists()
        second = submit("cy@corp.test")

    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id) == (rule.pk, second.pk)
    assert case.evidence == _evidence("fraud.signups_same_email_domain", 2, window)
    assert [_status(c) for c in (first, other, second)] == ["active", "active", "flagged"]
    assert Customer.objects.get(pk=second.pk).signup_ip == IP_A  # the form records the sign-up IP
