from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from apps.customers.models import DomainEvent
from apps.loyalty import services
from apps.loyalty.models import Membership, Tier
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def _tiers(program):
    return [
        Tier.objects.create(program=program, name="Bronze", rank=1, threshold=Decimal("0")),
        Tier.objects.create(
            program=program, name="Silver", rank=2, threshold=Decimal("500"), multiplier=Decimal("1.5")
        ),
        Tier.objects.create(program=program, name="Gold", rank=3, threshold=Decimal("1000"), multiplier=Decimal("2")),
    ]


def _tier_name(membership):
    return Membership.objects.select_related("tier").get(pk=membership.pk).tier.name


def _recalculate_at(membership, moment):
    with time_machine.travel(moment, tick=False):
        services.tier_recalculate(membership=membership)
    return _tier_name(membership)


def test_calendar_year_tier_is_kept_through_the_next_year_then_downgraded_at_period_end():
    program = program_make(tier_window="calendar_year", tier_downgrade="period_end")
    _tiers(program)
    with time_machine.travel(datetime(2026, 6, 1, tzinfo=UTC), tick=False):
        membership, _ = services.member_join(customer=CustomerFactory(), program=program)
        services.points_award(membership=membership, points=1000, reason="big spender", key="k1")
    assert _recalculate_at(membership, datetime(2026, 6, 1, tzinfo=UTC)) == "Gold"

    assert _recalculate_at(membership, datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)) == "Gold"
    assert _recalculate_at(membership, datetime(2028, 1, 1, 0, 0, tzinfo=UTC)) == "Bronze"

    changes = DomainEvent.objects.filter(name="loyalty.tier_changed").order_by("pk")
    assert [(e.payload["old_tier"], e.payload["new_tier"], e.payload["direction"]) for e in changes] == [
        ("Bronze", "Gold", "up"),
        ("Gold", "Bronze", "down"),
    ]


def test_rolling_window_with_grace_days_downgrades_only_after_the_grace_period():
    program = program_make(
        tier_window="rolling_days", tier_window_days=30, tier_downgrade="grace_days", tier_grace_days=7
    )
    _tiers(program)
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        membership, _ = services.member_join(customer=CustomerFactory(), program=program)
        services.points_award(membership=membership, points=600, reason="x", key="k1")
    assert _recalculate_at(membership, start) == "Silver"

    # Day 30 exactly: the lot is still inside the 30-day window; one second later it has left it.
    assert _recalculate_at(membership, start + timedelta(days=30)) == "Silver"
    out_of_window = start + timedelta(days=30, seconds=1)
    assert _recalculate_at(membership, out_of_window) == "Silver"
    membership.refresh_from_db()
    assert membership.tier_hold_until == out_of_window + timedelta(days=7)

    assert _recalculate_at(membership, out_of_window + timedelta(days=7, seconds=-1)) == "Silver"
    assert _recalculate_at(membership, out_of_window + timedelta(days=7)) == "Bronze"


def test_reaching_the_threshold_upgrades_at_that_moment():
    program = program_make(tier_window="lifetime")
    _tiers(program)
    day = datetime(2026, 5, 5, 9, tzinfo=UTC)
    with time_machine.travel(day, tick=False):
        membership, _ = services.member_join(customer=CustomerFactory(), program=program)
        services.points_award(membership=membership, points=499, reason="almost", key="a")
    assert _recalculate_at(membership, day) == "Bronze"
    with time_machine.travel(day + timedelta(hours=1), tick=False):
        services.points_award(membership=membership, points=1, reason="there", key="b")
    assert _recalculate_at(membership, day + timedelta(hours=1)) == "Silver"


def test_downgrade_never_keeps_the_tier_and_a_manual_floor_wins():
    program = program_make(tier_window="rolling_days", tier_window_days=10, tier_downgrade="never")
    _bronze, _silver, gold = _tiers(program)
    at = datetime(2026, 1, 10, tzinfo=UTC)
    membership, _ = services.member_join(customer=CustomerFactory(), program=program, at=at)
    services.points_award(membership=membership, points=500, reason="x", key="k", at=at)
    services.tier_recalculate(membership=membership, at=at)
    services.tier_recalculate(membership=membership, at=at + timedelta(days=60))
    assert _tier_name(membership) == "Silver"

    services.tier_set(membership=membership, tier=gold)
    services.tier_recalculate(membership=membership, at=at + timedelta(days=61))
    assert _tier_name(membership) == "Gold"


def test_tier_multiplier_applies_to_order_earning():
    from tests.factories import make_order

    program = program_make()
    _bronze, silver, _gold = _tiers(program)
    customer = CustomerFactory()
    membership, _ = services.member_join(customer=customer, program=program)
    services.tier_set(membership=membership, tier=silver)

    order = make_order(customer, total="101.00")
    lots = services.order_points_earn(order=order)

    assert [lot.amount for lot in lots] == [151]  # 101 x 1.5 rounded down


def test_recalculate_all_upgrades_by_amount_spent_and_is_idempotent():
    from tests.factories import make_order

    program = program_make(tier_basis="amount_spent")
    _tiers(program)
    rich, poor = CustomerFactory(), CustomerFactory()
    for customer in (rich, poor):
        services.member_join(customer=customer, program=program)
    make_order(rich, total="1200.00")
    make_order(poor, total="20.00")

    assert services.tiers_recalculate_all() == 1
    assert services.tiers_recalculate_all() == 0
    tiers = dict(Membership.objects.values_list("customer_id", "tier__name"))
    assert tiers == {rich.pk: "Gold", poor.pk: "Bronze"}


def test_recalculate_all_follows_calendar_years_at_period_end_in_one_scan(django_assert_max_num_queries):
    program = program_make(tier_window="calendar_year", tier_downgrade="period_end")
    _tiers(program)
    stays, drops = CustomerFactory(), CustomerFactory()
    members = {}
    for customer, points_2026 in ((stays, 1000), (drops, 600)):
        membership, _ = services.member_join(customer=customer, program=program, at=datetime(2026, 2, 1, tzinfo=UTC))
        services.points_award(
            membership=membership,
            points=points_2026,
            reason="2026",
            key=f"y26-{customer.pk}",
            at=datetime(2026, 2, 1, tzinfo=UTC),
        )
        members[customer.pk] = membership
    services.points_award(
        membership=members[stays.pk], points=1000, reason="2027", key="y27", at=datetime(2027, 3, 1, tzinfo=UTC)
    )

    assert services.tiers_recalculate_all(at=datetime(2026, 12, 31, tzinfo=UTC)) == 2
    with django_assert_max_num_queries(4):  # programs, tiers, one annotated scan: nobody needs a change
        assert services.tiers_recalculate_all(at=datetime(2027, 6, 1, tzinfo=UTC)) == 0
    assert services.tiers_recalculate_all(at=datetime(2028, 1, 1, tzinfo=UTC)) == 1

    tiers = dict(Membership.objects.values_list("customer_id", "tier__name"))
    assert tiers == {stays.pk: "Gold", drops.pk: "Bronze"}
