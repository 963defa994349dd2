"""
Loyalty's earning consumer in batches on PostgreSQL (issue 12): a task claims pending events and earns them in
one transaction — the first orders of distinct customers set-based, the rest one by one in savepoints — writing
exactly what the per-event path writes; disjoint batches for concurrent workers, each order earned once; a poison
order isolated; a lost connection redoes the batch; one event a task on SQLite.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.customers import services as customer_services
from apps.customers.currency import exchange_rate_set
from apps.customers.models import Customer, CustomerEvent, DomainEvent, DomainEventReceipt, Order
from apps.loyalty import services
from apps.loyalty.choices import RuleKind
from apps.loyalty.models import (
    Balance,
    EarningBatchClaim,
    EarningRule,
    EarningRuleCounter,
    EarningRuleLimit,
    LedgerEntry,
    Membership,
    PointHold,
    PointLot,
    Referral,
    Tier,
)
from apps.loyalty.services import consumer
from apps.loyalty.tasks import domain_event_consume
from apps.platform.kill_switch import global_kill_switch_set
from loyalty_site.lib import tasks as task_queue
from tests.automations.test_engine_resilience import Killer
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import program_make
from tests.threads import raised, run_together

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

postgres = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def no_queue(monkeypatch):
    """Committed events whose tasks are not run: the test runs them itself."""
    monkeypatch.setattr(task_queue, "enqueue_on_commit", lambda *args, **kwargs: None)


@pytest.fixture
def killer():
    instance = Killer()
    yield instance
    instance.close()


def _pending_loyalty_events() -> list[int]:
    done = DomainEventReceipt.objects.filter(consumer="loyalty").values("event_id")
    return list(
        DomainEvent.objects.filter(status="pending", name__in=consumer.CONSUMED)
        .exclude(pk__in=done)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _earn_one_by_one() -> None:
    for event_id in _pending_loyalty_events():
        services.domain_event_consume_one(event_id=event_id)


def _customer(name: str, **fields: Any) -> Customer:
    return CustomerFactory(external_id=name, email=f"{name}@example.com", **fields)


def _world(variant: str) -> list[int]:
    """
    A program with tiers, rules and a mix of customers; what happened before is earned one by one, and the events
    the batch is about are left pending (their ids returned). `variant`: "plain", "limits" (a points limit on a
    rule, points pending for 14 days, negative balances allowed) or "kill_switch".
    """
    exchange_rate_set(currency="EUR", day=date(2026, 11, 1), rate="1.08")
    exchange_rate_set(currency="GBP", day=date(2026, 11, 1), rate="1.25")
    program = program_make(
        min_order_total=Decimal("10"),
        currency_earning_rates={"GBP": "2"},
        return_policy="allow_negative",
        pending_days=14 if variant == "limits" else 0,
        referral_requires_purchase=True,
        referrer_bonus=100,
        referee_bonus=50,
    )
    Tier.objects.create(program=program, name="Bronze", rank=1, threshold=0)
    Tier.objects.create(program=program, name="Silver", rank=2, threshold=100, multiplier=Decimal("1.5"))
    Tier.objects.create(program=program, name="Gold", rank=3, threshold=500, multiplier=Decimal("2"))
    big = EarningRule.objects.create(
        program=program,
        name="Big basket",
        kind=RuleKind.PER_AMOUNT,
        points=Decimal("0.5"),
        conditions={"field": "order.total", "op": "gte", "value": 200},
    )
    EarningRule.objects.create(
        program=program,
        name="Double week",
        kind=RuleKind.TIME_BONUS,
        multiplier=Decimal("2"),
        ends_at=NOW + timedelta(days=1),
    )
    EarningRule.objects.create(
        program=program, name="Review", kind=RuleKind.FIXED_EVENT, points=25, event_name="review"
    )
    if variant == "limits":
        EarningRuleLimit.objects.create(rule=big, points=60, period="day", scope="rule")
    names = ["first", "eur", "gbp", "small", "silver", "debt", "refund", "twice", "referee", "referrer", "flagged"]
    customers = {name: _customer(name) for name in names}
    customers["blocked"] = _customer("blocked", status="blocked")

    # before: a Silver member 40 points short of Gold, a member in debt, an order to refund, a referral waiting
    make_order(customers["silver"], total="150.00")  # x2 (time bonus) = 300, then Silver
    make_order(customers["debt"], total="40.00")  # 80
    make_order(customers["referrer"], total="20.00")
    refunded = make_order(customers["refund"], total="120.00")
    _earn_one_by_one()
    if variant != "limits":  # (points pending for 14 days cannot be spent: the refund takes them back pending)
        services.points_deduct(membership=services.membership_for(customers["debt"]), points=80, reason="spent")
    customer_services.refund_create(order=Order.objects.get(customer=customers["debt"]), amount="40.00")
    _earn_one_by_one()
    services.referral_register(
        referee=customers["referee"], code=services.membership_for(customers["referrer"]).referral_code
    )
    customer_services.customer_status_set(customer=customers["flagged"], status="flagged", reason="velocity", cause="t")
    _earn_one_by_one()
    if variant == "kill_switch":
        global_kill_switch_set(on=True, reason="incident")

    # the batch: first orders in three currencies, one under the minimum, a tier crossing, a debt paid off, a refund,
    # a customer's two orders, a referee's first purchase, flagged and blocked customers, a custom event
    make_order(customers["first"], total="250.00")
    make_order(customers["eur"], total="50.00", currency="EUR")
    make_order(customers["gbp"], total="30.00", currency="GBP")
    make_order(customers["small"], total="5.00")
    make_order(customers["silver"], total="70.00")  # 105 + 105 at Silver's x1.5: 510, Gold
    make_order(customers["debt"], total="60.00")
    customer_services.refund_create(order=refunded, amount="30.00")
    make_order(customers["twice"], total="30.00")
    make_order(customers["twice"], total="45.00")
    make_order(customers["referee"], total="80.00")
    make_order(customers["flagged"], total="70.00")
    make_order(customers["blocked"], total="70.00")
    customer_services.custom_event_record(customer=customers["referrer"], name="review")
    return _pending_loyalty_events()


def _state(since: int) -> dict[str, Any]:
    """Everything loyalty writes, keyed by customer (not by row ids, which differ between two runs)."""
    member_of = dict(Membership.objects.values_list("pk", "customer__external_id"))

    def payload(values: dict[str, Any]) -> dict[str, Any]:
        return {key: member_of[value] if key == "membership_id" else value for key, value in values.items()}

    return {
        "lots": sorted(
            PointLot.objects.values_list(
                "membership__customer__external_id",
                "source_key",
                "amount",
                "remaining",
                "reversed_amount",
                "status",
                "source_type",
                "reason",
                "cause",
                "rule__name",
                "held",
                "created_at",
                "activates_at",
                "expires_at",
            )
        ),
        "entries": list(
            LedgerEntry.objects.order_by("membership__customer__external_id", "pk").values_list(
                "membership__customer__external_id",
                "kind",
                "active_delta",
                "pending_delta",
                "debt_delta",
                "active_after",
                "lot__source_key",
                "reason",
                "cause",
                "created_at",
            )
        ),
        "balances": sorted(
            Balance.objects.values_list(
                "membership__customer__external_id",
                "active",
                "pending",
                "debt",
                "expiring_soon",
                "lifetime_earned",
                "lifetime_spent",
                "lifetime_expired",
                "updated_at",
            )
        ),
        "members": sorted(
            Membership.objects.values_list(
                "customer__external_id",
                "tier__name",
                "tier_since",
                "tier_hold_until",
                "last_activity_at",
                "joined_at",
                "referred_by__customer__external_id",
            )
        ),
        "referrals": sorted(
            Referral.objects.values_list("referee__external_id", "status", "referrer_bonus", "referee_bonus")
        ),
        "holds": sorted(PointHold.objects.values_list("membership__customer__external_id", "status", "reason")),
        "counters": sorted(EarningRuleCounter.objects.values_list("limit__points", "bucket", "subject", "used")),
        "events": sorted(
            (name, customer, sorted(payload(values).items()), cause)
            for name, customer, values, cause in DomainEvent.objects.filter(pk__gt=since).values_list(
                "name", "customer__external_id", "payload", "cause"
            )
        ),
        "receipts": sorted(DomainEventReceipt.objects.filter(consumer="loyalty").values_list("event_id", flat=True)),
    }


class _Rollback(Exception):
    pass


@pytest.mark.parametrize("variant", ["plain", "limits", "kill_switch"])
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_writes_exactly_what_the_events_write_one_by_one(no_queue, settings, variant):
    # given a mixed set of pending events (time frozen: both runs write the same times)
    with time_machine.travel(NOW, tick=False):
        ids = _world(variant)
        since = DomainEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
        assert len(ids) == 13

        # when they are earned one event at a time (then rolled back) ...
        with pytest.raises(_Rollback), transaction.atomic():
            for event_id in ids:
                services.domain_event_consume_one(event_id=event_id)
            one_by_one = _state(since)
            raise _Rollback
        # ... and when one task earns them all in one batch
        assert consumer.domain_events_earn_batch(event_id=ids[0], limit=50) >= 0
        batched = _state(since)

    # then the batch wrote the same ledger rows, lots, balances, tiers, referral effects, holds, counters and events
    for part in one_by_one:
        assert batched[part] == one_by_one[part], part
    assert [pk for pk in batched["receipts"] if pk >= ids[0]] == ids
    assert DomainEventReceipt.objects.filter(consumer="loyalty", event_id__in=ids).count() == len(ids)
    lots = {row[1]: row[2] for row in batched["lots"]}
    if variant == "kill_switch":
        # refused: not a point earned while the switch is on, no member enrolled, the referral still waiting
        assert PointLot.objects.filter(order__customer__external_id="first").count() == 0
        assert Membership.objects.filter(customer__external_id="first").count() == 0
        assert Referral.objects.get().status == "registered"
    else:
        first = Order.objects.get(customer__external_id="first")
        rules = dict(EarningRule.objects.values_list("name", "pk"))
        assert lots[f"order:{first.pk}:base"] == 250
        assert lots[f"order:{first.pk}:rule:{rules['Double week']}"] == 250
        if variant == "plain":
            assert lots[f"order:{first.pk}:rule:{rules['Big basket']}"] == 125
        else:  # the rule's points limit: 60 a day
            assert lots[f"order:{first.pk}:rule:{rules['Big basket']}"] == 60
        assert Membership.objects.get(customer__external_id="silver").tier.name == "Gold"
        assert Referral.objects.get().status == "rewarded"


def _orders(count: int, start: int = 0) -> list[int]:
    for index in range(start, start + count):
        make_order(_customer(f"c{index}"), total="40.00")
    return _pending_loyalty_events()


def _statements(event_id: int, **kwargs: Any) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        consumer.domain_events_earn_batch(event_id=event_id, **kwargs)
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_of_first_orders_costs_the_same_statements_whatever_its_size(no_queue):
    # given a program with a tier and 5, then 25 first orders pending
    program = program_make()
    Tier.objects.create(program=program, name="Bronze", rank=1, threshold=0)
    small = _orders(5)
    with time_machine.travel(datetime.now(UTC), tick=True):
        five = _statements(small[0], limit=50)
    large = _orders(25, start=5)

    # when one task earns each batch
    twenty_five = _statements(large[0], limit=50)

    # then each batch is one transaction with one commit, and the statements do not grow with its size
    assert sum(1 for sql in five if sql.startswith("COMMIT")) == 1
    assert len(five) == len(twenty_five), "\n".join(twenty_five)
    # 39: the event's state, BEGIN, the claim, the events, the lane's reads (program, kill switch, rules, orders with
    # customers, their lots, open holds, waiting referrals), a savepoint, the enrolment (members, entry tier,
    # memberships, balances, member.joined: 9), the balances locked, the members, the lots, the entries, expiring
    # soon, the balances, the activity, points_changed listeners (2), the tiers (3), the receipts, the settle (2),
    # COMMIT. Was 51 statements and 3 commits per first order.
    assert len(twenty_five) == 39, "\n".join(sql[:70] for sql in twenty_five)
    assert PointLot.objects.count() == Balance.objects.filter(active=40).count() == 30
    assert DomainEventReceipt.objects.filter(consumer="loyalty").count() == 30
    # and a task whose event a batch already earned finds nothing to do: one statement
    assert len(_statements(small[1], limit=50)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_concurrent_workers_on_a_backlog_earn_each_order_once(no_queue):
    # given 40 first orders pending
    program_make()
    ids = _orders(40)

    # when four workers run every event's task at once, each a share of them, in batches of 5
    def share(index: int):
        def work() -> None:
            for event_id in ids[index::4]:
                consumer.domain_events_earn_batch(event_id=event_id, limit=5)

        return work

    assert raised(run_together(*(share(index) for index in range(4)))) == []

    # then each order earned once
    assert PointLot.objects.count() == LedgerEntry.objects.count() == 40
    assert sorted(Balance.objects.values_list("active", flat=True)) == [40] * 40
    assert Membership.objects.count() == 40
    assert DomainEvent.objects.filter(name="member.joined").count() == 40
    assert DomainEventReceipt.objects.filter(consumer="loyalty", event_id__in=ids).count() == 40
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"processed"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_poison_order_is_isolated_and_the_rest_of_its_batch_earns(no_queue, monkeypatch):
    # given 6 first orders, one of which cannot be planned (a bug for that order)
    program_make()
    ids = _orders(6)
    poison = Order.objects.get(customer__external_id="c3")
    real_plan = consumer.order_points_plan

    def plan(order, membership, at, rules=None):
        if order.pk == poison.pk:
            raise ValueError("poison")
        return real_plan(order, membership, at, rules)

    monkeypatch.setattr(consumer, "order_points_plan", plan)
    monkeypatch.setattr("apps.loyalty.services.earning.order_points_plan", plan)

    # when one task earns the batch
    consumer.domain_events_earn_batch(event_id=ids[0], limit=50)

    # then the other five earned, and the poison stays pending, counted, without a receipt
    earned = set(PointLot.objects.values_list("order__customer__external_id", flat=True))
    assert earned == {"c0", "c1", "c2", "c4", "c5"}
    poison_event = DomainEvent.objects.get(name="order.created", payload__order_id=poison.pk)
    assert not DomainEventReceipt.objects.filter(event=poison_event, consumer="loyalty").exists()
    assert EarningBatchClaim.objects.get().event_id == poison_event.pk
    # and once fixed, its own task earns it alone (not in a batch again)
    monkeypatch.undo()
    monkeypatch.setattr(task_queue, "enqueue_on_commit", lambda *args, **kwargs: None)
    assert consumer.domain_events_earn_batch(event_id=poison_event.pk, limit=50) == 40
    assert PointLot.objects.filter(order=poison).count() == 1
    assert EarningBatchClaim.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_rolls_the_batch_back_and_it_is_earned_again_once(no_queue, monkeypatch, killer):
    # given 5 first orders, and the worker's connection terminated once in the batch, after its lots were written
    program_make()
    ids = _orders(5)
    real_tiers = consumer.tiers_recalculate_many
    kills: list[int] = []

    def tiers(**kwargs):
        if not kills:
            kills.append(1)
            killer.kill("after the lots")
        return real_tiers(**kwargs)

    monkeypatch.setattr(consumer, "tiers_recalculate_many", tiers)

    # when one task earns the batch
    consumer.domain_events_earn_batch(event_id=ids[0], limit=50)

    # then the batch ran again after the loss, and each order earned once
    assert killer.kills == ["after the lots"]
    assert PointLot.objects.count() == LedgerEntry.objects.count() == 5
    assert sorted(Balance.objects.values_list("active", flat=True)) == [40] * 5
    assert DomainEventReceipt.objects.filter(consumer="loyalty").count() == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backlog_drains_in_batches_claimed_with_a_lease(no_queue):
    # given 12 first orders pending for longer than the outbox grace
    program_make()
    with time_machine.travel(NOW, tick=False):
        ids = _orders(12)

    # when the task of the first one runs, then of the second (already earned), then of the last
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        first = consumer.domain_events_earn_batch(event_id=ids[0], limit=5)
        second = consumer.domain_events_earn_batch(event_id=ids[1], limit=5)
        last = consumer.domain_events_earn_batch(event_id=ids[-1], limit=5)

    # then each task earned a batch of old events (its own first); the claims are gone once earned
    assert (first, second, last) == (200, 0, 200)
    assert PointLot.objects.count() == 10
    assert EarningBatchClaim.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backlog_batch_at_work_keeps_other_tasks_off_its_events_until_its_lease_ends(no_queue):
    # given an old order whose backlog batch claimed it and died (its count and lease stand)
    program_make()
    with time_machine.travel(NOW, tick=False):
        (event_id,) = _orders(1)
    EarningBatchClaim.objects.create(event_id=event_id, claims=1, claimed_at=NOW + timedelta(minutes=2))

    # when its task runs within the lease, then after it
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        within = consumer.domain_events_earn_batch(event_id=event_id, limit=5)
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        after = consumer.domain_events_earn_batch(event_id=event_id, limit=5)

    # then it is left to the batch, then earned alone
    assert (within, after) == (0, 40)
    assert EarningBatchClaim.objects.count() == 0


@pytest.mark.django_db
def test_on_sqlite_a_task_earns_its_own_event_only(no_queue):
    if connection.vendor == "postgresql":
        pytest.skip("the SQLite fallback")
    # given three first orders pending
    program_make()
    ids = _orders(3)

    # when the first one's task runs
    moved = domain_event_consume(ids[0])

    # then only its order earned
    assert moved == 40
    assert list(PointLot.objects.values_list("order__customer__external_id", flat=True)) == ["c0"]
    assert _pending_loyalty_events() == ids[1:]


@pytest.mark.django_db
def test_a_custom_event_earns_through_the_batch_as_alone(no_queue):
    # given a fixed-points rule and a member's custom event
    program = program_make()
    EarningRule.objects.create(
        program=program, name="Review", kind=RuleKind.FIXED_EVENT, points=25, event_name="review"
    )
    customer = _customer("reviewer")
    customer_services.custom_event_record(customer=customer, name="review")
    (event_id,) = _pending_loyalty_events()

    # when its task runs
    moved = domain_event_consume(event_id)

    # then the rule's points were earned
    custom = CustomerEvent.objects.get()
    assert moved == 25
    assert list(PointLot.objects.values_list("source_key", "amount")) == [
        (f"event:{custom.pk}:rule:{program.rules.get().pk}", 25)
    ]
