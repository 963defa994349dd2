"""Real threads, each with its own database connection, against PostgreSQL row locks."""

import threading

import pytest
from django.db import connection, connections

from apps.loyalty import services
from apps.loyalty.choices import RedemptionStatus
from apps.loyalty.models import Balance, LedgerEntry, PointLot, Redemption, Reward
from loyalty_site.lib.errors import DomainError
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import assert_ledger_consistent, program_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


# The server (max_connections=100) is shared with other test databases: at most this many of the
# threads hold a connection at the same moment; all of them still race for the same rows.
MAX_CONNECTIONS = 40


def _run_parallel(count: int, work) -> list:
    """Start `count` threads at once; each runs work(i) on its own connection. Returns results/exceptions."""
    barrier = threading.Barrier(count)
    gate = threading.BoundedSemaphore(MAX_CONNECTIONS)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            with gate:
                results[index] = work(index)
                connections.close_all()
        except Exception as error:  # collected and asserted by the test
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_100_parallel_redemptions_of_a_reward_with_stock_50_give_exactly_50():
    program = program_make()
    reward = Reward.objects.create(program=program, name="Tote bag", kind="material_prize", points_cost=10, stock=50)
    members = []
    for index in range(100):
        membership, _ = services.member_join(customer=CustomerFactory(), program=program)
        services.points_award(membership=membership, points=10, reason="seed", key=f"seed-{index}")
        members.append(membership)

    results = _run_parallel(100, lambda i: services.reward_redeem(membership=members[i], reward=reward))

    succeeded = [r for r in results if isinstance(r, Redemption)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert [repr(r) for r in results if not isinstance(r, (Redemption, DomainError))] == []
    assert (len(succeeded), len(refused)) == (50, 50)
    assert {error.code for error in refused} == {"out_of_stock"}
    reward.refresh_from_db()
    assert reward.stock == 0
    assert Redemption.objects.filter(status=RedemptionStatus.ISSUED).count() == 50
    spent = sorted(Balance.objects.filter(membership__in=members).values_list("active", flat=True))
    assert spent == [0] * 50 + [10] * 50
    for membership in members:
        assert_ledger_consistent(membership)


def test_20_parallel_spends_by_one_customer_never_overdraw():
    program = program_make()
    membership, _ = services.member_join(customer=CustomerFactory(), program=program)
    for index in range(3):
        services.points_award(membership=membership, points=100, reason="seed", key=f"seed-{index}")

    results = _run_parallel(
        20, lambda i: services.points_deduct(membership=membership, points=40, reason=f"spend {i}", key=f"s-{i}")
    )

    succeeded = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert (len(succeeded), len(refused)) == (7, 13)  # 7 x 40 = 280 ≤ 300 < 8 x 40
    balance = assert_ledger_consistent(membership)
    assert (balance.active, balance.lifetime_spent) == (20, 280)
    assert sum(PointLot.objects.filter(membership=membership).values_list("remaining", flat=True)) == 20


def test_the_same_order_event_replayed_concurrently_earns_once():
    program_make()
    customer = CustomerFactory()
    order = make_order(customer, total="250.00")

    results = _run_parallel(10, lambda i: services.order_points_earn(order=order))

    assert not [r for r in results if isinstance(r, Exception)]
    assert list(PointLot.objects.filter(order=order).values_list("amount", flat=True)) == [250]
    membership = services.membership_for(customer)
    assert assert_ledger_consistent(membership).active == 250
    assert connection.vendor == "postgresql"


def test_parallel_referrals_respect_the_referrer_cap():
    from apps.loyalty.models import Referral

    program = program_make(referrer_bonus=100, referee_bonus=10, referral_cap=3)
    referrer, _ = services.member_join(customer=CustomerFactory(), program=program)
    referees = [CustomerFactory() for _ in range(10)]

    results = _run_parallel(10, lambda i: services.referral_register(referee=referees[i], code=referrer.referral_code))

    assert [repr(r) for r in results if isinstance(r, Exception)] == []
    statuses = sorted(Referral.objects.values_list("status", flat=True))
    assert statuses == ["capped"] * 7 + ["rewarded"] * 3
    assert assert_ledger_consistent(referrer).active == 300


def test_expiry_job_running_during_spends_keeps_the_ledger_exact():
    from datetime import timedelta

    from django.utils import timezone

    program = program_make(expiry_policy="days_after_activation", expiry_days=30)
    membership, _ = services.member_join(customer=CustomerFactory(), program=program)
    old = timezone.now() - timedelta(days=31)
    services.points_award(membership=membership, points=100, reason="old", key="old", at=old)  # already due
    services.points_award(membership=membership, points=200, reason="new", key="new")

    def work(index: int):
        if index == 0:
            return services.points_expire_due()
        return services.points_deduct(membership=membership, points=30, reason=f"s{index}", key=f"s{index}")

    results = _run_parallel(9, work)

    assert [repr(r) for r in results if isinstance(r, Exception) and not isinstance(r, DomainError)] == []
    spent = sum(1 for r in results if isinstance(r, LedgerEntry))
    balance = assert_ledger_consistent(membership)
    assert spent == 6  # the 100 due points are never spendable: 200 // 30
    assert (balance.active, balance.lifetime_expired, balance.lifetime_spent) == (20, 100, 180)
