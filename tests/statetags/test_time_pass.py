"""
The scheduled time pass on generated data: it touches only the customers whose answer can have changed since
the last pass (row count and query count pinned), and after every pass the carriers equal a full
recomputation of the conditions at that moment.
"""

import random
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from apps.automations.models import Workflow
from apps.automations.services import workflow_activate, workflow_create
from apps.automations.state_tags import apply, state_units, state_workflows_active, time_pass
from apps.automations.state_tags.timepass import _unit_pass, candidate_ids
from apps.customers.models import Customer, Order
from apps.customers.services import order_cancel, refund_create
from apps.tagging.models import CustomerTag
from loyalty_site.lib.conditions import audience_queryset
from tests.factories import CustomerFactory, make_order

from .conftest import NOW

pytestmark = pytest.mark.django_db

WINDOWED = {
    "all": [
        {"field": "customer.orders_count", "window": {"days": 30}, "op": "gte", "value": 2},
        {"field": "customer.total_spent", "window": {"days": 30}, "op": "gte", "value": 300},
    ]
}
LAPSED = {
    "all": [
        {"field": "customer.last_order_at", "op": "lt", "value": {"days_ago": 20}},
        {"field": "customer.total_spent", "op": "gte", "value": 200},
    ]
}


def state_tag(name: str, condition: dict, tag: str):
    definition = {"schema": 1, "trigger": {"event": "customer.state_tag", "where": condition}, "state": {"tag": tag}}
    return workflow_activate(workflow=workflow_create(name=name, definition=definition))


def generate(seed: int, customers: int) -> list[Customer]:
    rng = random.Random(seed)
    people = [CustomerFactory() for _ in range(customers)]
    for customer in people:
        for _ in range(rng.randrange(0, 5)):
            order = make_order(
                customer,
                total=f"{rng.randrange(20, 400)}.00",
                placed_at=NOW - timedelta(days=rng.uniform(0, 60)),
            )
            dice = rng.random()
            if dice < 0.1:
                order_cancel(order=order)
            elif dice < 0.2:
                refund_create(order=order, amount=str(order.total / 2))
    return people


def carriers(tag: str) -> set[int]:
    return set(CustomerTag.objects.filter(tag__name=tag).values_list("customer_id", flat=True))


def matchers(condition: dict, now) -> set[int]:
    return set(audience_queryset(condition, now=now, base=Customer.objects.all()).values_list("pk", flat=True))


def left_window(since, now, days: int = 30) -> set[int]:
    """Customers with a counted order that left the window between the two passes (computed independently)."""
    orders = Order.objects.exclude(status="cancelled").values_list("customer_id", "placed_at")
    return {
        customer for customer, placed in orders if since - timedelta(days=days) <= placed < now - timedelta(days=days)
    }


def test_time_passes_touch_only_candidates_and_equal_a_full_recomputation(
    clock, settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    generate(seed=11, customers=60)
    with django_capture_on_commit_callbacks(execute=True):  # activation recomputes in full, at NOW
        hot = state_tag("Hot", WINDOWED, "Hot")
        state_tag("Lapsed", LAPSED, "Lapsed")
    assert carriers("Hot") == matchers(WINDOWED, NOW)
    assert carriers("Lapsed") == matchers(LAPSED, NOW)

    since = NOW
    for step in range(1, 9):
        now = NOW + timedelta(days=step * 3, hours=step)
        clock.move_to(now)
        results = {result.workflows[0]: result for result in time_pass(now=now)}

        assert carriers("Hot") == matchers(WINDOWED, now), step
        assert carriers("Lapsed") == matchers(LAPSED, now), step
        assert results[hot.pk].candidates == len(left_window(since, now)), step
        assert results[hot.pk].candidates < Customer.objects.count()
        since = now


def test_a_pass_with_nothing_to_do_costs_a_fixed_number_of_queries(clock, settings, django_capture_on_commit_callbacks):
    settings.TASKS_SYNC = True
    generate(seed=5, customers=30)
    with django_capture_on_commit_callbacks(execute=True):
        state_tag("Hot", WINDOWED, "Hot")
    time_pass(now=NOW + timedelta(minutes=10))

    def queries(now) -> int:
        with CaptureQueriesContext(connection) as captured:
            time_pass(now=now)
        return len(captured)

    quiet = queries(NOW + timedelta(minutes=20))  # no order left the window in those ten minutes
    generate(seed=6, customers=30)  # twice the customers and orders
    quiet_again = queries(NOW + timedelta(minutes=30))

    # the active state tags, the candidates (the two windowed figures share one range: one query) and the
    # checked time — no lock, no savepoint, whatever the data size
    assert quiet == quiet_again == 3
    assert Workflow.objects.get(name="Hot").state_checked_at == NOW + timedelta(minutes=30)


def test_a_pass_over_state_tags_that_do_not_move_with_time_is_one_query(
    clock, settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    generate(seed=5, customers=20)
    with django_capture_on_commit_callbacks(execute=True):
        state_tag("Big spender", {"field": "customer.total_spent", "op": "gte", "value": 300}, "Big spender")
        state_tag("Repeat", {"field": "customer.orders_count", "op": "gte", "value": 2}, "Repeat")
    checked = dict(Workflow.objects.values_list("name", "state_checked_at"))

    with CaptureQueriesContext(connection) as captured:
        results = time_pass(now=NOW + timedelta(days=40))

    assert results == []
    assert len(captured) == 1  # the active state tags; nothing in them moves with the clock
    assert dict(Workflow.objects.values_list("name", "state_checked_at")) == checked


def test_an_idle_pass_does_not_move_a_checked_time_another_pass_moved(
    clock, settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    generate(seed=5, customers=10)
    with django_capture_on_commit_callbacks(execute=True):
        hot = state_tag("Hot", WINDOWED, "Hot")
    time_pass(now=NOW + timedelta(minutes=10))
    units = state_units(state_workflows_active())  # read by a pass that is about to find nothing
    Workflow.objects.filter(pk=hot.pk).update(state_checked_at=NOW + timedelta(minutes=30))  # another pass

    result = _unit_pass(units[0], now=NOW + timedelta(minutes=20))

    assert (result.candidates, result.added, result.removed) == (0, 0, 0)
    assert Workflow.objects.get(pk=hot.pk).state_checked_at == NOW + timedelta(minutes=30)


def test_candidates_are_read_one_alternative_at_a_time_and_equal_the_union(clock, settings):
    settings.TASKS_SYNC = True
    people = generate(seed=7, customers=40)
    since, now = NOW - timedelta(days=3), NOW
    window = Q(
        pk__in=Order.objects.filter(
            placed_at__gte=since - timedelta(days=30), placed_at__lt=now - timedelta(days=30)
        ).values("customer_id")
    )
    recent = Q(last_order_at__gte=since - timedelta(days=20), last_order_at__lte=now - timedelta(days=20))
    union = set(Customer.objects.filter(window | recent).values_list("pk", flat=True))

    with CaptureQueriesContext(connection) as captured:
        found = candidate_ids(Q(pk__in=[]) | window | recent | window)

    assert set(found) == union and found == sorted(found)
    assert 0 < len(union) < len(people)
    assert len(captured) == 2  # `pk__in=[]` asks nothing; the repeated window runs once
    assert all(" OR " not in query["sql"] for query in captured)


# A column restricted to a list of ids: `IN (1, 2)`, or one array parameter on PostgreSQL (`= ANY('{1,2}'::…)`).
IDS = r" (?:IN \(|= ANY\('\{)([0-9, ]+)"
IDS_IN = re.compile(r'"customers_customer"\."id"' + IDS)
ORDERS_OF = re.compile(r'U0\."customer_id"' + IDS)
TAGGED = re.compile(r'"tagging_customertag"\."customer_id"' + IDS)


def id_list(pattern: re.Pattern, sql: str) -> set[int]:
    found = pattern.findall(sql)
    assert len(found) == 1, sql
    return {int(part) for part in found[0].split(",")}


def test_a_pass_with_more_candidates_than_a_chunk_re_decides_only_them_chunk_by_chunk(
    clock, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    monkeypatch.setattr(apply, "CHUNK", 2)
    generate(seed=13, customers=40)
    with django_capture_on_commit_callbacks(execute=True):
        hot = state_tag("Hot", WINDOWED, "Hot")
    since, chunked, removed_any = NOW, 0, 0
    for step in range(1, 6):
        now = NOW + timedelta(days=step * 4)
        clock.move_to(now)
        candidates = sorted(left_window(since, now))
        chunks = [set(candidates[start : start + 2]) for start in range(0, len(candidates), 2)]
        before = carriers("Hot")
        with CaptureQueriesContext(connection) as captured:
            results = {result.workflows[0]: result for result in time_pass(now=now)}
        after = carriers("Hot")

        assert after == matchers(WINDOWED, now), step  # the same answer as a full recomputation
        assert results[hot.pk].candidates == len(candidates), step
        assert before - after <= set(candidates) and after - before <= set(candidates), step
        # One compiled query per chunk, restricted to the chunk's customers and aggregating only their orders;
        # one carriers query per chunk, restricted the same way.
        sqls = [query["sql"] for query in captured]
        decided = [id_list(IDS_IN, sql) for sql in sqls if "GROUP BY" in sql]
        assert decided == chunks, step
        assert [id_list(ORDERS_OF, sql) for sql in sqls if "GROUP BY" in sql] == chunks, step
        assert [id_list(TAGGED, sql) for sql in sqls if sql.startswith('SELECT "tagging_customertag"')] == chunks
        # Every other read of orders is the candidates' range; none reads every customer or every order.
        orders = [sql for sql in sqls if '"customers_order"' in sql and "GROUP BY" not in sql]
        assert len(orders) == 1 and '"placed_at" <' in orders[0], step
        # Pinned: 8 fixed (state tags, candidates, savepoint, lock, checked times, tag, checked time, release),
        # 4 a chunk (savepoint, matchers, carriers, release), and a chunk that removes the tag from someone adds
        # its removal (savepoint, tag, listeners, workflows, the audited delete — one statement on PostgreSQL,
        # audit then delete elsewhere —, release).
        removals = sum(1 for chunk in chunks if chunk & (before - after))
        removal = 6 if connection.vendor == "postgresql" else 7
        assert after - before == set()
        assert len(captured) == 8 + 4 * len(chunks) + removal * removals, step
        chunked += len(chunks) > 1
        removed_any += removals
        since = now
    assert chunked >= 3 and removed_any >= 2  # several passes went chunk by chunk, some removed tags
