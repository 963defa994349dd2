"""Fraud rules: validation with paths, built-in checks, velocity holds, referral refusals, review, kill switch."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError

from apps.campaigns.fraud import services
from apps.campaigns.fraud.fields import email_is_disposable
from apps.campaigns.fraud.models import FraudCase, FraudRule
from apps.campaigns.promotions.models import Campaign
from apps.customers import services as customer_services
from apps.customers.models import Customer, CustomerStatusChange
from apps.loyalty import services as loyalty
from apps.loyalty.choices import HoldStatus, ReferralStatus
from apps.loyalty.models import Balance, PointHold, PointLot, Referral
from apps.platform.kill_switch import kill_switch_state
from apps.platform.models import AuditEntry
from tests.factories import CustomerFactory, UserFactory, make_order
from tests.loyalty.conftest import assert_ledger_consistent, program_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _enable(key: str, **changes) -> FraudRule:
    services.fraud_builtin_install()  # (a transactional test elsewhere may have flushed the migration's rows)
    rule = FraudRule.objects.get(builtin_key=key)
    return services.fraud_rule_save(rule=rule, is_enabled=True, **changes)


def test_builtin_checks_are_installed_disabled_and_install_is_idempotent():
    services.fraud_builtin_install()
    keys = set(FraudRule.objects.exclude(builtin_key=None).values_list("builtin_key", flat=True))
    assert keys == {
        "self_referral_ip_device",
        "disposable_email",
        "referral_burst",
        "referral_ip_burst",
        "signup_ip_burst",
        "abnormal_redemptions",
        "order_velocity",
    }
    assert not FraudRule.objects.filter(is_enabled=True).exists()
    assert services.fraud_builtin_install() == 0


def test_a_rule_is_validated_on_save_with_paths_and_nothing_is_stored():
    bad = {
        "all": [
            {"field": "fraud.orders", "window": {"weeks": 1}, "op": "gte", "value": 3},
            {"field": "fraud.referrals", "window": {"minutes": 30}, "op": "equals", "value": 3},
            {"field": "referral.same_ip", "op": "eq", "value": True},
        ]
    }
    with pytest.raises(ValidationError) as error:
        services.fraud_rule_save(name="Bad", trigger="order.created", condition=bad, action="refuse_referral")

    messages = error.value.message_dict
    assert set(messages) == {"action", "condition.all[0].window", "condition.all[1].op", "condition.all[2].field"}
    assert "minutes" in messages["condition.all[0].window"][0]
    assert not FraudRule.objects.filter(name="Bad").exists()

    good = services.fraud_rule_save(
        name="Fast orders",
        trigger="order.created",
        condition={"field": "fraud.orders", "window": {"minutes": 30}, "op": "gte", "value": 3},
        action="hold_points",
    )
    assert AuditEntry.objects.filter(object_type="campaigns.fraudrule", object_id=str(good.pk)).count() == 1


def test_disposable_domain_from_the_maintained_list_flags_the_customer(sync):
    _enable("disposable_email")
    assert email_is_disposable("x@mailinator.com") and email_is_disposable("x@eu.mailinator.com")
    assert not email_is_disposable("x@gmail.com")

    fake = sync(lambda: customer_services.customer_create(email="bot@mailinator.com", signup_ip="10.0.0.9"))
    real = sync(lambda: customer_services.customer_create(email="ana@gmail.com"))

    fake.refresh_from_db()
    real.refresh_from_db()
    assert (fake.status, real.status) == ("flagged", "active")
    case = FraudCase.objects.get()
    assert (case.customer, case.action, case.status) == (fake, "flag", "open")
    assert case.evidence == [
        {
            "path": "",
            "field": "fraud.email_disposable",
            "window": None,
            "op": "eq",
            "expected": True,
            "value": True,
        }
    ]
    assert CustomerStatusChange.objects.get().cause == f"fraud_rule:{case.rule_id}"


def test_self_referral_from_the_same_ip_is_refused_and_bonuses_taken_back(sync):
    _enable("self_referral_ip_device")
    program = program_make(referrer_bonus=20, referee_bonus=10)
    referrer_customer = customer_services.customer_create(email="ref@example.com", signup_ip="203.0.113.7")
    referrer, _ = loyalty.member_join(customer=referrer_customer, program=program)
    same_ip = CustomerFactory(email="other@example.com")
    elsewhere = CustomerFactory(email="friend@example.com")

    refused = sync(lambda: loyalty.referral_register(referee=same_ip, code=referrer.referral_code, ip="203.0.113.7"))
    kept = sync(lambda: loyalty.referral_register(referee=elsewhere, code=referrer.referral_code, ip="198.51.100.1"))

    refused.refresh_from_db()
    kept.refresh_from_db()
    assert (refused.status, kept.status) == (ReferralStatus.REFUSED, ReferralStatus.REWARDED)
    assert refused.refused_reason.startswith("Fraud rule “Self-referral")
    balance = assert_ledger_consistent(referrer)
    assert (balance.active, balance.lifetime_earned) == (20, 20)  # only the kept referral's bonus
    assert assert_ledger_consistent(loyalty.membership_for(same_ip, program)).active == 0
    case = FraudCase.objects.get()
    assert (case.referral, case.evidence[0]["field"], case.evidence[0]["value"]) == (refused, "referral.same_ip", True)


def test_velocity_rule_holds_points_and_review_moves_them_exactly(sync):
    program_make()
    services.fraud_rule_save(
        name="Fast orders",
        trigger="order.created",
        condition={"field": "fraud.orders", "window": {"minutes": 60}, "op": "gte", "value": 2},
        action="hold_points",
        is_enabled=True,
    )
    customer = CustomerFactory()
    with time_machine.travel(NOW, tick=False):
        sync(lambda: make_order(customer, total="40.00", placed_at=NOW - timedelta(minutes=50)))
        second = sync(lambda: make_order(customer, total="25.00", placed_at=NOW))
        third = sync(lambda: make_order(customer, total="15.00", placed_at=NOW))
    membership = loyalty.membership_for(customer)

    held = assert_ledger_consistent(membership)
    assert (held.active, held.pending, held.lifetime_earned) == (40, 40, 80)
    first_case, second_case = FraudCase.objects.order_by("pk")
    assert first_case.hold.source_prefix == f"order:{second.pk}:"
    assert first_case.evidence[0]["value"] == 2 and second_case.evidence[0]["value"] == 3
    reviewer = UserFactory()

    services.fraud_case_approve(case=first_case, user=reviewer, note="Known wholesaler")
    approved = assert_ledger_consistent(membership)
    assert (approved.active, approved.pending, approved.lifetime_earned) == (65, 15, 80)

    services.fraud_case_reject(case=second_case, user=reviewer)
    rejected = assert_ledger_consistent(membership)
    assert (rejected.active, rejected.pending, rejected.lifetime_earned) == (65, 0, 65)
    assert PointLot.objects.get(order=third).status == "cancelled"
    assert list(PointHold.objects.order_by("pk").values_list("status", flat=True)) == [
        HoldStatus.RELEASED,
        HoldStatus.REJECTED,
    ]
    assert list(
        AuditEntry.objects.filter(object_type="campaigns.fraudcase").order_by("pk").values_list("action", "actor")
    ) == [("approved", reviewer.pk), ("rejected", reviewer.pk)]
    with pytest.raises(Exception) as again:
        services.fraud_case_reject(case=first_case, user=reviewer)
    assert getattr(again.value, "code", "") == "case_closed"


def test_flag_rule_then_approval_clears_the_status_and_activates_held_points(sync):
    program = program_make()
    services.fraud_rule_save(
        name="Sign-up burst",
        trigger="customer.registered",
        condition={"field": "fraud.signups_same_ip", "window": {"hours": 1}, "op": "gte", "value": 2},
        action="flag",
        is_enabled=True,
    )
    sync(lambda: customer_services.customer_create(email="a@example.com", signup_ip="192.0.2.1"))
    second = sync(lambda: customer_services.customer_create(email="b@example.com", signup_ip="192.0.2.1"))
    membership, _ = loyalty.member_join(customer=second, program=program)
    loyalty.points_award(membership=membership, points=50, reason="welcome")
    assert Customer.objects.get(pk=second.pk).status == "flagged"
    assert (Balance.objects.get(pk=membership.pk).active, Balance.objects.get(pk=membership.pk).pending) == (0, 50)

    services.fraud_case_approve(case=FraudCase.objects.get(), user=UserFactory())

    second.refresh_from_db()
    assert (second.status, second.status_reason) == (
        "active",
        f"Cleared after review of case #{FraudCase.objects.get().pk}",
    )
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.pending) == (50, 0)


def test_a_fraud_rule_can_fire_the_kill_switch_and_pause_a_campaign(sync):
    campaign = Campaign.objects.create(name="Summer", status="active")
    services.fraud_rule_save(
        name="Code abuse",
        trigger="customer.registered",
        condition={"field": "customer.email", "op": "ends_with", "value": "@abuse.test"},
        action="block",
        fire_kill_switch=True,
        pause_campaign=campaign,
        is_enabled=True,
    )

    customer = sync(lambda: customer_services.customer_create(email="x@abuse.test"))

    customer.refresh_from_db()
    campaign.refresh_from_db()
    switch = kill_switch_state()
    assert customer.status == "blocked"
    assert campaign.status == "paused"
    assert switch.is_on is True and switch.reason.startswith("Fraud rule “Code abuse”")


def test_a_re_delivered_event_opens_no_second_case(sync):
    _enable("disposable_email")
    customer = sync(lambda: customer_services.customer_create(email="bot@mailinator.com"))
    from apps.campaigns.fraud.consumer import consume
    from apps.customers.models import DomainEvent

    event = DomainEvent.objects.get(name="customer.registered", customer=customer)
    assert consume(event.pk) == 0
    assert FraudCase.objects.count() == 1
    assert CustomerStatusChange.objects.count() == 1


def test_review_page_needs_permissions_and_a_refused_decision_changes_nothing(client, sync):
    _enable("disposable_email")
    sync(lambda: customer_services.customer_create(email="bot@mailinator.com"))
    case = FraudCase.objects.get()
    viewer = UserFactory(is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_fraudcase"))
    client.force_login(viewer)

    page = client.get("/admin/campaigns/fraud/review/")
    refused = client.post(f"/admin/campaigns/fraud/review/{case.pk}/approve/")

    assert page.status_code == 200
    assert b"fraud.email_disposable" in page.content and b'data-testid="approve-' not in page.content
    assert refused.status_code == 403
    case.refresh_from_db()
    assert case.status == "open"

    viewer.user_permissions.add(Permission.objects.get(codename="review_fraudcase"))
    client.force_login(viewer)
    done = client.post(f"/admin/campaigns/fraud/review/{case.pk}/reject/", {"note": "bot"}, follow=True)
    unknown = client.post(f"/admin/campaigns/fraud/review/{case.pk}/maybe/")
    case.refresh_from_db()
    assert (done.status_code, case.status, case.note, case.resolved_by) == (200, "rejected", "bot", viewer)
    assert unknown.status_code == 404

    outsider = UserFactory(is_superuser=False)
    client.force_login(outsider)
    assert client.get("/admin/campaigns/fraud/review/").status_code == 403


def test_referral_burst_holds_the_bonus_of_the_fifth_referral(sync):
    _enable("referral_burst")
    program = program_make(referrer_bonus=10)
    referrer, _ = loyalty.member_join(customer=CustomerFactory(), program=program)
    for _index in range(5):
        sync(lambda: loyalty.referral_register(referee=CustomerFactory(), code=referrer.referral_code))

    balance = assert_ledger_consistent(referrer)
    assert (balance.active, balance.pending) == (40, 10)
    case = FraudCase.objects.get()
    assert case.hold.source_prefix == f"referral:{Referral.objects.order_by('pk').last().pk}:"
