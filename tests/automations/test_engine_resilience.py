"""
A lost database connection inside a run is transient (issue 10): the worker's backend is terminated with
`pg_terminate_backend` from a second connection at chosen moments of a run — while a run is being opened,
inside an action's transaction after its write, between two actions, inside the loyalty earning task — and
every run still ends succeeded with each effect (tag, points) exactly once.
"""

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import time_machine
from django.db import connection
from django.utils.module_loading import import_string

from apps.automations import registry
from apps.automations.engine import opening, runs_retry_due, sets
from apps.automations.models import ActionEffect, WorkflowRun
from apps.customers import outbox
from apps.customers import services as customer_services
from apps.customers.models import Customer, DomainEvent
from apps.loyalty import services as loyalty_services
from apps.loyalty.models import Balance, EarningRule, LedgerEntry, PointLot
from apps.loyalty.services import consumer as loyalty_consumer
from apps.tagging.models import CustomerTag, TagAudit
from loyalty_site.lib import tasks as task_queue
from tests.automations.test_engine_support import active_workflow
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class Killer:
    """A second connection that terminates the worker's backend (this thread's Django connection)."""

    def __init__(self) -> None:
        settings = connection.settings_dict
        self.conn = psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
            autocommit=True,
        )
        self.kills: list[str] = []

    def kill(self, where: str) -> bool:
        """Terminates the worker's backend; False when it is already gone (killed at an earlier moment with no
        statement since, as in the set-based lane, where two moments can follow each other without SQL)."""
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        # The timeout form waits until the backend is gone, so the worker's next statement fails.
        terminated = self.conn.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]
        if terminated:
            self.kills.append(where)
        return bool(terminated)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def killer():
    instance = Killer()
    yield instance
    instance.close()


class Worker:
    """Runs what the application enqueues, in order, as a django-q2 worker would (a failing task is dropped)."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.failed: list[str] = []
        monkeypatch.setattr(
            task_queue, "enqueue_on_commit", lambda func, *args, **kwargs: self.calls.append((func, args))
        )

    def drain(self) -> None:
        while self.calls:
            func, args = self.calls.pop(0)
            try:
                import_string(func)(*args)
            except Exception as error:  # django-q2 records the failure; the sweeps are what retries
                self.failed.append(f"{func.rsplit('.', 1)[-1]}: {type(error).__name__}")
                task_queue.db_connections_recover()


def _once_per(customers: set[int], kill: Callable[[], None], customer_of: Callable[..., int]) -> Callable:
    """A hook that kills the connection the first time it is reached for each customer in `customers`."""
    pending = set(customers)

    def hook(*args: Any, **kwargs: Any) -> bool:
        customer_id = customer_of(*args, **kwargs)
        if customer_id in pending and kill() is not False:
            # (not killed: the connection was already gone; the next statement fails, and the retry comes
            # back here and kills it then)
            pending.discard(customer_id)
            return True
        return False

    return hook


def _wrap_action(monkeypatch, name: str, *, before: Callable | None = None, after: Callable | None = None) -> None:
    spec = registry.action_get(name)
    real = spec.run

    def run(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
        if before:
            before(context)
        result = real(context, params, effect_key)
        if after:
            after(context)
        return result

    def run_many(contexts: list[Any], params: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
        # the batch's set-based lane: the same moments, for the runs at this step (one kill at a time: the
        # connection is gone after the first)
        if before:
            any(before(context) for context in contexts)
        results = spec.run_many(contexts, params, keys)
        if after:
            any(after(context) for context in contexts)
        return results

    replaced = {"run": run, **({"run_many": run_many} if spec.run_many else {})}
    monkeypatch.setitem(registry._actions, name, dataclasses.replace(spec, **replaced))


@pytest.mark.parametrize("batch", [1, 50])
def test_terminated_connections_mid_run_are_retried_and_every_effect_happens_once(monkeypatch, killer, settings, batch):
    # (batch 50: the engine's task claims the pending events in one transaction, see test_engine_batches)
    settings.AUTOMATIONS_EVENT_BATCH = batch
    # given a program with an earning rule for "visit" events and a workflow: tag, then award points
    program = program_make()
    EarningRule.objects.create(program=program, name="Visit", kind="fixed_event", event_name="visit", points=5)
    active_workflow(
        "visit",
        "event.custom",
        [
            {"id": "s1", "action": "customer.add_tags", "params": {"tags": ["Visited"]}},
            {"id": "s2", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Visit"}},
        ],
    )
    customers = CustomerFactory.create_batch(10)
    ids = [customer.pk for customer in customers]
    by_context = lambda context: context.customer.pk  # noqa: E731

    # and the worker's connection terminated at five different moments, each for other customers
    _wrap_action(
        monkeypatch, "customer.add_tags", after=_once_per({ids[0], ids[5]}, lambda: killer.kill("tag"), by_context)
    )
    _wrap_action(
        monkeypatch,
        "loyalty.award_points",
        before=_once_per({ids[1], ids[6]}, lambda: killer.kill("between actions"), by_context),
        after=_once_per({ids[2], ids[7]}, lambda: killer.kill("points"), by_context),
    )
    open_hook = _once_per({ids[3]}, lambda: killer.kill("opening"), lambda workflow, event, **kw: event.customer_id)
    real_open = opening._run_open

    def run_open(*, workflow, event, parent, now):
        open_hook(workflow, event)
        return real_open(workflow=workflow, event=event, parent=parent, now=now)

    monkeypatch.setattr(opening, "_run_open", run_open)
    real_lane_open = sets._SetLane._open

    def lane_open(self, workflow, event):  # the batch's set-based lane opens runs here
        open_hook(workflow, event)
        return real_lane_open(self, workflow, event)

    monkeypatch.setattr(sets._SetLane, "_open", lane_open)
    real_earn = loyalty_services.event_points_earn
    earn_hook = _once_per(
        {ids[4], ids[8]}, lambda: killer.kill("loyalty"), lambda custom_event: custom_event.customer_id
    )

    def event_points_earn(*, custom_event, **kwargs):
        earn_hook(custom_event)
        return real_earn(custom_event=custom_event, **kwargs)

    monkeypatch.setattr(loyalty_consumer, "event_points_earn", event_points_earn)
    worker = Worker(monkeypatch)

    # when each customer visits and the worker runs, then the periodic sweeps run as time passes
    with time_machine.travel(START, tick=False):
        for customer in customers:
            customer_services.custom_event_record(customer=customer, name="visit")
        worker.drain()
    for hours in range(1, 8):
        with time_machine.travel(START + timedelta(hours=hours), tick=False):
            runs_retry_due()
            outbox.outbox_sweep()
            worker.drain()

    # then the connection was really lost nine times, and every run succeeded
    assert sorted(killer.kills) == sorted(
        ["tag"] * 2 + ["between actions"] * 2 + ["points"] * 2 + ["opening", "loyalty", "loyalty"]
    )
    runs = list(WorkflowRun.objects.order_by("customer_id").values_list("customer_id", "status"))
    assert runs == [(pk, "succeeded") for pk in ids]
    retried = set(WorkflowRun.objects.filter(attempts__gt=1).values_list("customer_id", flat=True))
    if batch == 1:
        assert retried == {ids[0], ids[5], ids[1], ids[6], ids[2], ids[7]}
    else:
        # a lost connection rolls the whole batch back (its runs included) and the batch is run again:
        # no attempt was recorded, and the effects below still happened exactly once
        assert retried == set()
    assert DomainEvent.objects.exclude(status="processed").count() == 0
    # and each effect happened exactly once per customer: one tag (one audit row, one tag_added event)...
    assert sorted(CustomerTag.objects.filter(tag__name="Visited").values_list("customer_id", flat=True)) == ids
    assert sorted(TagAudit.objects.values_list("customer_id", flat=True)) == ids
    assert DomainEvent.objects.filter(name="customer.tag_added").count() == len(ids)
    # ...10 points from the workflow and 5 from the earning rule, one lot and one ledger entry each
    lots = sorted(PointLot.objects.values_list("membership__customer_id", "source_type", "amount"))
    assert lots == sorted([(pk, "workflow", 10) for pk in ids] + [(pk, "event", 5) for pk in ids])
    assert LedgerEntry.objects.count() == 2 * len(ids)
    assert list(Balance.objects.order_by("pk").values_list("active", flat=True)) == [15] * len(ids)
    assert ActionEffect.objects.filter(status="done").count() == 2 * len(ids)


def test_a_lost_connection_in_the_loyalty_earning_task_is_retried_and_earns_once(monkeypatch, killer, settings):
    # given a member's order, and the connection terminated inside the earning (before its commit) and
    # again after the earning committed, before loyalty's receipt (one event a task: the batch's own losses are
    # tests/loyalty/test_earning_batch.py's)
    settings.TASKS_SYNC = True
    settings.LOYALTY_EVENT_BATCH = 1
    program_make()
    customer = CustomerFactory()
    real_earn = loyalty_services.order_points_earn
    real_consumed = outbox.domain_event_consumed
    hits = {"earn": 0, "consumed": 0}

    def order_points_earn(*, order, **kwargs):
        hits["earn"] += 1
        lots = real_earn(order=order, **kwargs)
        if hits["earn"] == 1:
            killer.kill("inside the earning")  # the earning's transaction committed: the lot stands
        return lots

    def domain_event_consumed(*, event_id, consumer):
        if consumer == "loyalty":
            hits["consumed"] += 1
            if hits["consumed"] == 1:
                killer.kill("before the receipt")
        return real_consumed(event_id=event_id, consumer=consumer)

    monkeypatch.setattr(loyalty_consumer, "order_points_earn", order_points_earn)
    monkeypatch.setattr(outbox, "domain_event_consumed", domain_event_consumed)

    # when the order is placed (the task runs right after the commit)
    order = make_order(customer, total="70.00")

    # then the task retried through both losses and the points were earned once
    assert killer.kills == ["inside the earning", "before the receipt"]
    assert list(PointLot.objects.values_list("source_key", "amount")) == [(f"order:{order.pk}:base", 70)]
    assert Balance.objects.get().active == 70
    assert DomainEvent.objects.get(name="order.created").status == "processed"
    assert Decimal(LedgerEntry.objects.get().active_delta) == 70


@pytest.mark.parametrize("batch", [1, 50])
def test_a_deadlock_inside_an_action_is_retried_and_its_effect_happens_once(monkeypatch, killer, settings, batch):
    # (batch 50: the engine's task claims the event with the batch's set-based lane; a deadlock rolls the
    # whole batch back and the task runs it again at once — no attempt recorded on the run)
    settings.AUTOMATIONS_EVENT_BATCH = batch
    # given a workflow tagging a customer, whose tag write deadlocks with another transaction once:
    # that transaction holds row Y and waits for row X, which the action locked; then the action asks for Y
    active_workflow(
        "deadlock", "customer.activated", [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["Seen"]}}]
    )
    customer, other = CustomerFactory(), CustomerFactory()
    table = Customer._meta.db_table
    other_side: list[threading.Thread] = []

    def deadlock(context: Any) -> None:
        if other_side:
            return
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL deadlock_timeout = '50ms'")  # this side detects it, so this side fails
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [customer.pk])  # X
        killer.conn.execute("BEGIN")
        killer.conn.execute("SET LOCAL deadlock_timeout = '30s'")
        killer.conn.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [other.pk])  # Y
        killer_pid = killer.conn.info.backend_pid

        def other_transaction() -> None:
            killer.conn.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [customer.pk])  # waits for X
            killer.conn.execute("ROLLBACK")

        thread = threading.Thread(target=other_transaction)
        other_side.append(thread)
        thread.start()
        with connection.cursor() as cursor:
            waiting = False
            while not waiting:  # until the other transaction waits for X (pg_locks is live, not a snapshot)
                cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)", [killer_pid])
                waiting = cursor.fetchone()[0]
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [other.pk])  # Y: deadlock

    _wrap_action(monkeypatch, "customer.add_tags", before=deadlock)
    worker = Worker(monkeypatch)

    # when the customer is activated, the worker runs, and the retry sweep runs later
    with time_machine.travel(START, tick=False):
        customer_services.customer_activate(customer=customer)
        worker.drain()
    other_side[0].join()
    run = WorkflowRun.objects.get()
    if batch == 1:
        assert (run.status, run.attempts, run.resume_step) == ("pending", 1, "steps[0]")
        assert "deadlock detected" in run.error
        with time_machine.travel(START + timedelta(hours=1), tick=False):
            assert runs_retry_due() == 1
            worker.drain()
    assert len(other_side) == 1  # the deadlock really happened, once

    # then the run succeeded (on its second attempt, or the batch's second try) with the tag added once
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("succeeded", 2 if batch == 1 else 1)
    assert list(CustomerTag.objects.values_list("customer_id", "tag__name")) == [(customer.pk, "Seen")]
    assert TagAudit.objects.count() == 1
    assert ActionEffect.objects.filter(status="done").count() == 1
