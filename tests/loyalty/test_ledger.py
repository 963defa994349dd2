from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.customers import services as customer_services
from apps.loyalty import services
from apps.loyalty.choices import EntryKind, LotStatus
from apps.loyalty.models import Balance, LedgerEntry, PointAllocation, PointLot, Reward
from loyalty_site.lib.errors import DomainError
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import assert_ledger_consistent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _member(program):
    membership, _ = services.member_join(customer=CustomerFactory(), program=program)
    return membership


def _award(membership, points, key, *, at=T0):
    lot, _ = services.points_award(membership=membership, points=points, reason="test", key=key, at=at)
    return lot


def test_replaying_the_same_order_event_ten_times_earns_once(program):
    customer = CustomerFactory()
    order = make_order(customer, total="120.00")

    for _ in range(10):
        services.order_points_earn(order=order)

    lots = PointLot.objects.filter(order=order)
    assert [(lot.source_key, lot.amount) for lot in lots] == [(f"order:{order.pk}:base", 120)]
    membership = services.membership_for(customer, program)
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.lifetime_earned) == (120, 120)


def test_spending_draws_from_the_soonest_expiring_lots_first(program):
    program.expiry_policy = "days_after_activation"
    program.save()
    membership = _member(program)
    late = _award(membership, 100, "late", at=T0)
    never = PointLot.objects.get(pk=_award(membership, 100, "never", at=T0 - timedelta(days=1)).pk)
    PointLot.objects.filter(pk=never.pk).update(expires_at=None)
    soon = _award(membership, 100, "soon", at=T0 - timedelta(days=200))

    with time_machine.travel(T0, tick=False):
        entry = services.points_deduct(membership=membership, points=150, reason="gift")

    allocations = list(PointAllocation.objects.filter(entry=entry).values_list("lot_id", "amount"))
    assert allocations == [(soon.pk, 100), (late.pk, 50)]
    remaining = dict(PointLot.objects.values_list("pk", "remaining"))
    assert remaining == {soon.pk: 0, late.pk: 50, never.pk: 100}
    assert PointLot.objects.get(pk=soon.pk).status == LotStatus.SPENT
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.lifetime_spent) == (150, 150)


def test_deducting_more_than_the_balance_is_refused_and_changes_nothing(program):
    membership = _member(program)
    _award(membership, 40, "a")
    entries_before = LedgerEntry.objects.count()

    with pytest.raises(DomainError) as error:
        services.points_deduct(membership=membership, points=41, reason="too much")

    assert error.value.code == "insufficient_points"
    assert LedgerEntry.objects.count() == entries_before
    assert Balance.objects.get(pk=membership.pk).active == 40
    assert PointLot.objects.get().remaining == 40


def test_award_and_deduct_require_a_reason(program):
    membership = _member(program)
    with pytest.raises(DomainError) as error:
        services.points_award(membership=membership, points=10, reason=" ")
    assert error.value.path == "reason"
    assert PointLot.objects.count() == 0


def test_refund_of_half_an_order_takes_back_half_its_points_from_its_own_lot(program):
    customer = CustomerFactory()
    membership, _ = services.member_join(customer=customer, program=program)
    other = _award(membership, 30, "other")
    order = make_order(customer, total="100.00")
    services.order_points_earn(order=order)

    customer_services.refund_create(order=order, amount="50.00")
    taken = services.order_points_reverse(order=order)
    again = services.order_points_reverse(order=order)

    order_lot = PointLot.objects.get(order=order)
    assert (taken, again) == (50, 0)
    assert (order_lot.remaining, order_lot.reversed_amount) == (50, 50)
    assert PointLot.objects.get(pk=other.pk).remaining == 30
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.lifetime_earned) == (80, 80)


def test_refund_after_spending_takes_the_rest_from_other_lots_under_from_balance(program):
    customer = CustomerFactory()
    membership, _ = services.member_join(customer=customer, program=program)
    order = make_order(customer, total="100.00")
    services.order_points_earn(order=order)
    other = _award(membership, 60, "other")
    services.points_deduct(membership=membership, points=90, reason="spent most of the order lot")

    customer_services.order_cancel(order=order)
    taken = services.order_points_reverse(order=order)

    assert taken == 100
    assert PointLot.objects.get(order=order).remaining == 0
    # The order lot had 10 left (FEFO spent 90 of it, the older lot); 60 more come from `other`, and
    # the last 30 are forgiven: this policy never takes the balance below zero.
    assert PointLot.objects.get(pk=other.pk).remaining == 0
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.debt, balance.lifetime_earned) == (0, 0, 60)


def test_allow_negative_policy_records_a_debt_that_new_points_pay_first(program):
    program.return_policy = "allow_negative"
    program.save()
    customer = CustomerFactory()
    membership, _ = services.member_join(customer=customer, program=program)
    order = make_order(customer, total="100.00")
    services.order_points_earn(order=order)
    services.points_deduct(membership=membership, points=100, reason="spent")

    customer_services.order_cancel(order=order)
    services.order_points_reverse(order=order)
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.debt) == (0, 100)

    _award(membership, 130, "later")
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.debt, balance.available) == (30, 0, 30)


def test_pending_only_policy_does_not_touch_active_points(program):
    program.return_policy = "pending_only"
    program.pending_days = 14
    program.save()
    customer = CustomerFactory()
    membership, _ = services.member_join(customer=customer, program=program)
    with time_machine.travel(T0, tick=False):
        pending_order = make_order(customer, total="40.00")
        services.order_points_earn(order=pending_order)
    active_lot = _award(membership, 25, "active")

    customer_services.order_cancel(order=pending_order)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        services.order_points_reverse(order=pending_order)

    lot = PointLot.objects.get(order=pending_order)
    assert (lot.status, lot.remaining, lot.reversed_amount) == (LotStatus.CANCELLED, 0, 40)
    assert PointLot.objects.get(pk=active_lot.pk).remaining == 25
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.pending) == (25, 0)


def test_pending_points_activate_once_when_due(program):
    program.pending_days = 14
    program.save()
    customer = CustomerFactory()
    with time_machine.travel(T0, tick=False):
        order = make_order(customer, total="70.00")
        services.order_points_earn(order=order)
    membership = services.membership_for(customer, program)
    assert (Balance.objects.get(pk=membership.pk).active, Balance.objects.get(pk=membership.pk).pending) == (0, 70)

    assert services.points_activate_due(at=T0 + timedelta(days=13)) == 0
    assert services.points_activate_due(at=T0 + timedelta(days=14)) == 1
    assert services.points_activate_due(at=T0 + timedelta(days=15)) == 0

    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.pending) == (70, 0)
    assert LedgerEntry.objects.filter(kind=EntryKind.ACTIVATE).count() == 1


def test_expiry_and_rollback_are_exact(program):
    program.expiry_policy = "days_after_activation"
    program.expiry_days = 30
    program.save()
    membership = _member(program)
    short = _award(membership, 100, "short", at=T0)  # expires T0+30d
    long = _award(membership, 100, "long", at=T0 + timedelta(days=10))  # expires T0+40d
    reward = Reward.objects.create(program=program, name="Mug", kind="material_prize", points_cost=150)
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        redemption = services.reward_redeem(membership=membership, reward=reward)
    assert dict(PointLot.objects.values_list("pk", "remaining")) == {short.pk: 0, long.pk: 50}

    # The short lot's date passes while its points are spent: nothing to expire on it.
    assert services.points_expire_due(at=T0 + timedelta(days=31)) == 0
    with time_machine.travel(T0 + timedelta(days=32), tick=False):
        services.redemption_rollback(redemption=redemption, reason="order cancelled")

    # 100 returned to the expired lot expire at once; 50 go back to the long lot.
    short.refresh_from_db()
    long.refresh_from_db()
    assert (short.status, short.remaining, long.status, long.remaining) == (LotStatus.EXPIRED, 0, LotStatus.ACTIVE, 100)
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.lifetime_spent, balance.lifetime_expired) == (100, 0, 100)

    assert services.points_expire_due(at=T0 + timedelta(days=41)) == 1
    assert services.points_expire_due(at=T0 + timedelta(days=42)) == 0
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.lifetime_expired) == (0, 200)


def test_points_expiring_is_announced_once_per_lot(program):
    from apps.customers.models import DomainEvent

    program.expiry_policy = "days_after_activation"
    program.expiry_days = 30
    program.save()
    membership = _member(program)
    _award(membership, 80, "a", at=T0)

    assert services.points_expiring_notify(at=T0 + timedelta(days=26)) == 0
    assert services.points_expiring_notify(at=T0 + timedelta(days=27)) == 1
    assert services.points_expiring_notify(at=T0 + timedelta(days=28)) == 0

    event = DomainEvent.objects.get(name="loyalty.points_expiring")
    assert (event.customer_id, event.payload["points"]) == (membership.customer_id, 80)
    assert Balance.objects.get(pk=membership.pk).expiring_soon == 80


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("end_of_month", datetime(2026, 4, 1, tzinfo=UTC)),
        ("end_of_year", datetime(2027, 1, 1, tzinfo=UTC)),
        ("days_after_activation", datetime(2026, 3, 12, 12, tzinfo=UTC)),
        ("never", None),
        ("inactivity", None),
    ],
)
def test_expiry_date_follows_the_program_policy(program, policy, expected):
    program.expiry_policy = policy
    program.expiry_days = 10
    program.save()
    lot = _award(_member(program), 10, "k", at=T0)
    assert lot.expires_at == expected


def test_inactivity_expires_everything_after_n_quiet_days(program):
    program.expiry_policy = "inactivity"
    program.expiry_days = 90
    program.save()
    quiet, busy = _member(program), _member(program)
    _award(quiet, 50, "q", at=T0)
    _award(busy, 50, "b1", at=T0)
    _award(busy, 5, "b2", at=T0 + timedelta(days=60))

    assert services.points_expire_due(at=T0 + timedelta(days=89)) == 0
    assert services.points_expire_due(at=T0 + timedelta(days=90)) == 1

    assert assert_ledger_consistent(quiet).active == 0
    assert assert_ledger_consistent(busy).active == 55


def test_management_commands_run_the_jobs_and_report_counts(program):
    from io import StringIO

    from django.core.management import call_command

    program.pending_days = 1
    program.save()
    with time_machine.travel(T0, tick=False):
        services.points_earn(membership=_member(program), amount=10, source_type="api", source_key="api:x")
    outputs = []
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        for command in ("loyalty_activate_pending", "loyalty_expire_points", "loyalty_recalculate_tiers"):
            out = StringIO()
            call_command(command, stdout=out)
            outputs.append(out.getvalue().strip())

    assert outputs == [
        "Activated 1 lot(s).",
        "Sent 0 expiry reminder(s); expired 0 lot(s).",
        "0 tier change(s).",
    ]


def test_verify_ledger_reports_a_drifted_balance(program):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from apps.loyalty import selectors

    healthy, broken = _member(program), _member(program)
    _award(healthy, 10, "h")
    _award(broken, 10, "b")
    out = StringIO()
    call_command("loyalty_verify_ledger", stdout=out)
    assert out.getvalue().strip() == "Every balance matches its ledger."

    Balance.objects.filter(pk=broken.pk).update(active=11)  # a write that bypassed the services

    assert [row["membership_id"] for row in selectors.ledger_drift()] == [broken.pk]
    with pytest.raises(CommandError, match="1 member"):
        call_command("loyalty_verify_ledger", stdout=StringIO(), stderr=StringIO())
