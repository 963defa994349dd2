"""The global kill switch (state in apps.platform) over every incentive: promotions, loyalty earning, reward
redemption and the incentive actions of workflows; it refuses the very next request and resumes cleanly."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from apps.automations import registry
from apps.campaigns import automation as campaign_automation
from apps.campaigns.promotions import services as promo_services
from apps.customers.models import DomainEvent
from apps.loyalty import automation as loyalty_automation
from apps.loyalty import services as loyalty_services
from apps.loyalty.models import PointLot, Reward
from apps.platform.kill_switch import kill_switch_check, kill_switch_is_on, kill_switch_state
from apps.platform.models import AuditEntry, KillSwitchChange
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.factories import CustomerFactory, UserFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def _context(customer):
    return SimpleNamespace(customer=customer, now=None, extra={"run_id": 7, "cause": "workflow_run:7"})


def test_turning_it_on_needs_a_reason_and_is_audited_with_who_when_why():
    eve = UserFactory(username="eve")
    with pytest.raises(Exception) as error:
        promo_services.kill_switch_set(on=True, reason="  ", user=eve)
    assert "reason" in str(error.value)
    assert not kill_switch_is_on()

    promo_services.kill_switch_set(on=True, reason="pricing bug", user=eve, actor="fraud")

    state = kill_switch_state()
    assert (state.is_on, state.reason, state.changed_by_id, state.actor) == (True, "pricing bug", eve.pk, "fraud")
    assert state.changed_at is not None
    assert list(KillSwitchChange.objects.values_list("turned_on", "reason", "user_id", "actor")) == [
        (True, "pricing bug", eve.pk, "fraud")
    ]
    assert AuditEntry.objects.filter(action="kill_switch_on", object_type="platform.globalkillswitch").count() == 1
    # the trigger a workflow can alert on
    event = DomainEvent.objects.get(name="promotions.kill_switch")
    assert (event.payload["on"], event.payload["reason"], event.payload["actor"]) == (True, "pricing bug", "fraud")
    with pytest.raises(DomainError) as refused:
        kill_switch_check(path="reward")
    assert (refused.value.code, refused.value.path) == ("kill_switch", "reward")


def test_loyalty_earning_stops_while_on_and_the_next_order_after_earns_again():
    program_make()
    customer = CustomerFactory()
    promo_services.kill_switch_set(on=True, reason="stop")

    during = make_order(customer, total="80.00")
    assert loyalty_services.order_points_earn(order=during) == []

    promo_services.kill_switch_set(on=False)
    after = make_order(customer, total="50.00")
    lots = loyalty_services.order_points_earn(order=after)

    assert [lot.amount for lot in lots] == [50]
    assert not PointLot.objects.filter(order=during).exists()


def test_reward_redemption_is_refused_with_kill_switch_and_resumes():
    program = program_make()
    membership, _ = loyalty_services.member_join(customer=CustomerFactory(), program=program)
    loyalty_services.points_award(membership=membership, points=100, reason="seed", key="seed")
    reward = Reward.objects.create(program=program, name="5 off", kind="fixed_discount", value=5, points_cost=60)
    promo_services.kill_switch_set(on=True, reason="stop")

    with pytest.raises(DomainError) as error:
        loyalty_services.reward_redeem(membership=membership, reward=reward)
    assert error.value.code == "kill_switch"
    membership.balance.refresh_from_db()
    assert membership.balance.active == 100

    promo_services.kill_switch_set(on=False)
    redemption = loyalty_services.reward_redeem(membership=membership, reward=reward)
    assert redemption.points_spent == 60


def test_workflow_incentive_actions_are_refused_while_on_and_work_after():
    program_make()
    customer = CustomerFactory()
    campaign = campaign_with("Welcome", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    promo_services.codes_generate(campaign=campaign, pattern="W-####", count=3)
    promo_services.kill_switch_set(on=True, reason="stop")

    with pytest.raises(registry.ActionRefused, match="kill_switch"):
        loyalty_automation.run_award_points(_context(customer), {"points": 10, "reason": "hi"}, "run7:s1")
    with pytest.raises(registry.ActionRefused, match="kill_switch"):
        campaign_automation.run_issue_voucher(_context(customer), {"campaign": "Welcome"}, "run7:s2")
    assert not PointLot.objects.exists()

    promo_services.kill_switch_set(on=False)
    awarded = loyalty_automation.run_award_points(_context(customer), {"points": 10, "reason": "hi"}, "run7:s1")
    issued = campaign_automation.run_issue_voucher(_context(customer), {"campaign": "Welcome"}, "run7:s2")
    assert (awarded["points"], issued["code"].startswith("W-")) == (10, True)


def test_promotions_refuse_the_very_next_validation_and_resume():
    campaign_with("Ten", code="TEN", incentives=[{"kind": "fixed_order", "amount": Decimal("10.00")}])
    from apps.campaigns.promotions.eligibility import promotions_evaluate

    assert promotions_evaluate(cart=cart(("X", 1, "50.00")), customer=None, codes=["TEN"]).discount_total == 1000
    promo_services.kill_switch_set(on=True, reason="stop")
    refused = promotions_evaluate(cart=cart(("X", 1, "50.00")), customer=None, codes=["TEN"])
    assert [(c.code_text, c.refusal.reason) for c in refused.skipped] == [("TEN", "kill_switch")]
    with pytest.raises(DomainError) as error:
        promo_services.redemption_redeem(cart=cart(("X", 1, "50.00")), customer=None, codes=["TEN"])
    assert error.value.code == "kill_switch"
    promo_services.kill_switch_set(on=False)
    redemption = promo_services.redemption_redeem(cart=cart(("X", 1, "50.00")), customer=None, codes=["TEN"])
    assert redemption.discount_total == Decimal("10.00")
