"""
The set-based lane of a batch (issue 12, `apps.automations.engine.sets`): the runs of a batch sharing a
workflow are written together — one insert for the runs, one for their steps, one for the effect ledger, one
for the tags — and must leave exactly the rows the per-event path leaves. On an error the lane rolls back and
its events are redone one by one, each in its own savepoint.
"""

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.automations import tasks as engine_tasks
from apps.automations.engine import opening
from apps.automations.models import ActionEffect, WorkflowRun, WorkflowRunStep
from apps.customers import services as customer_services
from apps.customers.models import Customer, DomainEvent, DomainEventReceipt
from apps.tagging.models import CustomerTag, TagAudit
from loyalty_site.lib import tasks
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

RICH = [
    {
        "id": "gold?",
        "if": {"field": "event.properties.tier", "op": "eq", "value": "gold"},
        "then": [add_tags("Gold", "{{ event.properties.tier }} member", step_id="t1")],
        "else": [
            {
                "id": "ab",
                "split": [
                    {"name": "A", "percent": 50, "steps": [add_tags("A", step_id="ta")]},
                    {
                        "name": "B",
                        "percent": 50,
                        "steps": [{"id": "w", "wait": {"days": 2}}, add_tags("B", step_id="tb")],
                    },
                ],
            }
        ],
    },
    add_tags("Seen", step_id="t2"),
]


@pytest.fixture
def no_queue(monkeypatch):
    """Committed events whose tasks are not run: the test runs the task itself."""
    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda *args, **kwargs: None)


def _record(customers: list[Customer], tiers: list[str] | None = None) -> list[int]:
    for index, customer in enumerate(customers):
        tier = tiers[index % len(tiers)] if tiers else ""
        customer_services.custom_event_record(customer=customer, name="bench", properties={"tier": tier})
    return list(
        DomainEvent.objects.filter(name="event.custom", status="pending").order_by("pk").values_list("pk", flat=True)
    )


def _process(event_id: int) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        engine_tasks.process_domain_event(event_id)
    return [query["sql"] for query in captured.captured_queries]


def _written() -> dict[str, Any]:
    """Every row the engine wrote, without ids and with each run's id replaced by its customer and workflow."""
    runs = {run.pk: (run.customer_id, run.workflow.name) for run in WorkflowRun.objects.select_related("workflow")}

    def key(run_id: int) -> tuple[int, str]:
        return runs[run_id]

    return {
        "runs": sorted(
            (key(pk), status, skip, resume_step, str(resume_at), attempts, str(finished))
            for pk, status, skip, resume_step, resume_at, attempts, finished in WorkflowRun.objects.values_list(
                "pk", "status", "skip_reason", "resume_step", "resume_at", "attempts", "finished_at"
            )
        ),
        "steps": sorted(
            (
                key(step.run_id),
                step.path,
                step.step_id,
                step.kind,
                step.status,
                step.branch,
                repr(step.inputs),
                repr(step.outcome),
                step.error,
                str(step.started_at),
                str(step.finished_at),
            )
            for step in WorkflowRunStep.objects.all()
        ),
        "effects": sorted(
            (
                key(effect.run_id),
                effect.path,
                effect.key.replace(f"wr{effect.run_id}:", ""),
                effect.action,
                effect.status,
                repr(effect.outcome),
            )
            for effect in ActionEffect.objects.all()
        ),
        "tags": sorted(
            (row.customer_id, row.tag.name, row.source, row.source_ref.startswith("workflow_run:"), str(row.added_at))
            for row in CustomerTag.objects.select_related("tag")
        ),
        "audit": sorted(TagAudit.objects.values_list("customer_id", "tag_name", "action", "source")),
        "tag_events": sorted(
            (event.customer_id, event.payload["tag"], event.status)
            for event in DomainEvent.objects.filter(name="customer.tag_added")
        ),
        "receipts": sorted(
            DomainEventReceipt.objects.filter(consumer="automations").values_list("event_id", flat=True)
        ),
        "processed": sorted(
            DomainEvent.objects.filter(name="event.custom", status="processed").values_list("pk", flat=True)
        ),
    }


def _forget() -> None:
    """Undo what the engine wrote, leaving the recorded events pending as before their task ran."""
    WorkflowRun.objects.all().delete()
    CustomerTag.objects.all().delete()
    TagAudit.objects.all().delete()
    DomainEvent.objects.filter(name="customer.tag_added").delete()
    DomainEventReceipt.objects.filter(consumer="automations").delete()  # the other consumers' stay
    DomainEvent.objects.filter(name="event.custom").update(status="pending", processed_at=None)


def test_the_lane_writes_exactly_what_the_per_event_path_writes(no_queue, settings):
    # given a workflow with a condition, a dynamic tag, an A/B split with a wait, and a second workflow whose
    # trigger filter is false for these events, and 12 customers' events of three kinds
    settings.AUTOMATIONS_EVENT_BATCH = 50
    active_workflow("rich", "event.custom", RICH, where={"field": "event.name", "op": "eq", "value": "bench"})
    active_workflow(
        "other", "event.custom", [add_tags("Never")], where={"field": "event.name", "op": "eq", "value": "x"}
    )
    with time_machine.travel(START, tick=False):
        ids = _record(CustomerFactory.create_batch(12), tiers=["gold", "silver", ""])

        # when one task processes them set-based, and again (after undoing it) one event at a time
        lane = _process(ids[0])
        by_lane = _written()
        _forget()
        settings.AUTOMATIONS_EVENT_SETS = False
        alone = _process(ids[0])
        by_event = _written()

    # then both wrote the same rows, to the timestamp (time is frozen) ...
    assert by_lane == by_event
    # ... which are these: 24 runs (12 skipped by the filter), gold customers tagged Gold + "gold member",
    # the others split between A (tagged now) and B (waiting 2 days), everyone tagged Seen unless waiting
    statuses = sorted(status for _, status, *_ in by_lane["runs"])
    waiting = statuses.count("waiting")
    assert statuses == sorted(["skipped"] * 12 + ["succeeded"] * (12 - waiting) + ["waiting"] * waiting)
    assert 0 < waiting < 8
    names = [name for _, name, *_ in by_lane["tags"]]
    assert names.count("Gold") == names.count("gold member") == 4
    assert names.count("A") == 8 - waiting
    assert names.count("Seen") == 12 - waiting
    assert "Never" not in names and "B" not in names
    assert len(by_lane["audit"]) == len(by_lane["tag_events"]) == len(by_lane["tags"])
    assert by_lane["receipts"] == by_lane["processed"] == ids
    # and the lane took far fewer statements, none of them a savepoint
    assert not [sql for sql in lane if sql.startswith("SAVEPOINT")][1:]  # the lane's own savepoint only
    assert len(lane) < len(alone) / 4, (len(lane), len(alone))


PER_BATCH = 20


def test_a_batch_costs_the_same_statements_whatever_its_size(no_queue, settings):
    # given the benchmark's workflow (custom event named bench -> add tag) and batches of 2 and of 20 events
    settings.AUTOMATIONS_EVENT_BATCH = 50
    active_workflow(
        "bench", "event.custom", [add_tags("Bench")], where={"field": "event.name", "op": "eq", "value": "bench"}
    )
    CustomerFactory(external_id="first")
    ids = _record([Customer.objects.get(external_id="first")])
    _process(ids[0])  # creates the tag

    two = _process(_record(CustomerFactory.create_batch(2))[0])
    twenty = _process(_record(CustomerFactory.create_batch(20))[-1])

    # then: freshness, workflows, BEGIN, claim (events + customers), the receipts read again under the claim's
    # locks, custom events, SAVEPOINT, runs insert,
    # the tag's look-up, the tags insert, the audit insert, the tag-added events insert, the effects insert,
    # the steps insert, the runs update, RELEASE, receipts, settle (2), COMMIT — whatever the batch size
    assert len(two) == len(twenty) == PER_BATCH, "\n".join(twenty)
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 23
    assert (
        ActionEffect.objects.filter(status="done").count()
        == WorkflowRun.objects.filter(status="succeeded").count()
        == 23
    )
    assert DomainEvent.objects.filter(status="pending").count() == 0


def test_a_failing_action_sends_the_batch_one_event_at_a_time_and_fails_only_its_run(no_queue, settings):
    # given a workflow whose dynamic tag is too long (more than 100 characters) for one customer's event
    settings.AUTOMATIONS_EVENT_BATCH = 50
    active_workflow("named", "event.custom", [add_tags("{{ event.properties.tier }}"), add_tags("After")])
    customers = CustomerFactory.create_batch(4)
    ids = _record(customers, tiers=["ok", "x" * 101, "ok", "ok"])

    # when one task processes the batch
    statements = _process(ids[0])

    # then the lane rolled back and each event was processed alone: the poison one's run failed at its
    # step, the three others succeeded with each tag once; every event is processed
    assert sum(sql.startswith("ROLLBACK TO SAVEPOINT") for sql in statements) >= 2  # the lane's, the poison's action
    runs = dict(WorkflowRun.objects.values_list("customer_id", "status"))
    assert runs == {customers[0].pk: "succeeded", customers[1].pk: "failed", customers[2].pk: "succeeded",
                    customers[3].pk: "succeeded"}  # fmt: skip
    failed = WorkflowRun.objects.get(status="failed")
    assert failed.resume_step == "steps[0]"
    assert "at most 100 characters" in failed.error
    tags = sorted(CustomerTag.objects.values_list("customer_id", "tag__name"))
    assert tags == sorted(
        [(customer.pk, name) for customer in customers if customer != customers[1] for name in ("ok", "After")]
    )
    assert ActionEffect.objects.filter(status="done").count() == 6
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"processed"}


def test_a_customer_with_two_events_in_a_batch_sees_the_first_ones_effects(no_queue, settings):
    # given a workflow that tags "Bench" the first time and "Again" when the customer has it already
    settings.AUTOMATIONS_EVENT_BATCH = 50
    steps = [
        {
            "id": "has",
            "if": {"field": "customer.tags", "op": "contains", "value": "Bench"},
            "then": [add_tags("Again")],
            "else": [add_tags("Bench")],
        }
    ]
    active_workflow("twice", "event.custom", steps)
    twice, once = CustomerFactory(), CustomerFactory()
    ids = _record([twice, once, twice])

    # when one task processes the three events
    _process(ids[0])

    # then the customer with two events got both tags (its second event saw the first one's tag)
    tags = sorted(CustomerTag.objects.values_list("customer_id", "tag__name"))
    assert tags == sorted([(twice.pk, "Bench"), (twice.pk, "Again"), (once.pk, "Bench")])
    assert WorkflowRun.objects.filter(status="succeeded").count() == 3


def test_a_bug_in_the_lane_for_one_event_leaves_only_that_event_pending(no_queue, settings, monkeypatch):
    settings.AUTOMATIONS_EVENT_BATCH = 50
    active_workflow("bench", "event.custom", [add_tags("Bench")])
    ids = _record(CustomerFactory.create_batch(3))
    real_lane, real_one = opening.events_process_set, opening.domain_event_process

    def lane(events, scope, **kwargs):
        if any(event.pk == ids[1] for event in events):
            raise ValueError("a bug")
        return real_lane(events, scope, **kwargs)

    def one(*, event_id):
        if event_id == ids[1]:
            raise ValueError("a bug")
        return real_one(event_id=event_id)

    monkeypatch.setattr(opening, "events_process_set", lane)
    monkeypatch.setattr(opening, "domain_event_process", one)

    _process(ids[0])

    statuses = dict(DomainEvent.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {ids[0]: "processed", ids[1]: "pending", ids[2]: "processed"}
    assert CustomerTag.objects.count() == ActionEffect.objects.count() == 2
    assert not WorkflowRun.objects.filter(trigger_event_id=ids[1]).exists()


def _per_customer(customers: list[Customer]) -> list[tuple]:
    """What the engine wrote for each of `customers`, in their order, without ids."""
    from apps.loyalty.models import Balance, LedgerEntry, PointLot

    def strip(outcome: dict) -> dict:
        return {key: value for key, value in outcome.items() if key != "lot_id"}

    def run_free(cause: str) -> str:  # "workflow_run:<id>": the ids differ between the two groups
        return re.sub(r"workflow_run:\d+", "workflow_run:N", cause)

    rows = []
    for customer in customers:
        run = WorkflowRun.objects.get(customer=customer)
        rows.append(
            (
                run.status,
                [
                    (s.path, s.kind, s.status, repr(s.inputs) if s.path != "trigger" else "", repr(strip(s.outcome)))
                    for s in run.steps.order_by("pk")
                ],
                sorted((e.path, e.status, repr(strip(e.outcome))) for e in run.effects.all()),
                list(CustomerTag.objects.filter(customer=customer).values_list("tag__name", "source")),
                [
                    (*lot, run_free(cause))
                    for *lot, cause in PointLot.objects.filter(membership__customer=customer).values_list(
                        "amount", "remaining", "status", "source_type", "reason", "cause"
                    )
                ],
                list(
                    LedgerEntry.objects.filter(membership__customer=customer).values_list(
                        "kind", "active_delta", "active_after", "reason"
                    )
                ),
                list(Balance.objects.filter(membership__customer=customer).values_list("active", "lifetime_earned")),
                [
                    (status, run_free(cause))
                    for status, cause in DomainEvent.objects.filter(
                        customer=customer, name="member.joined"
                    ).values_list("status", "cause")
                ],
            )
        )
    return rows


def test_order_runs_tag_and_award_points_set_based_as_one_by_one(no_queue, settings):
    # given the benchmark's second workflow (order -> tag Buyer + 10 points), a loyalty program, and two
    # groups of customers, one of each with points already (a member), the others not yet members
    from apps.loyalty import services as loyalty_services
    from tests.factories import make_order
    from tests.loyalty.conftest import program_make

    settings.AUTOMATIONS_EVENT_BATCH = 50
    program = program_make()
    active_workflow(
        "buyer",
        "order.created",
        [add_tags("Buyer"), {"id": "p", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Bench"}}],
    )
    lane, alone = CustomerFactory.create_batch(4), CustomerFactory.create_batch(4)
    for customer in (lane[0], alone[0]):
        member, _ = loyalty_services.member_join(customer=customer, program=program)
        loyalty_services.points_award(membership=member, points=5, reason="Earlier")

    # when one group's orders are processed set-based and the other's one event at a time
    with time_machine.travel(START, tick=False):
        for customer in lane:
            make_order(customer, total="25.00")
        statements = _process(DomainEvent.objects.filter(name="order.created").first().pk)
        settings.AUTOMATIONS_EVENT_SETS = False
        for customer in alone:
            make_order(customer, total="25.00")
        _process(DomainEvent.objects.filter(name="order.created", status="pending").first().pk)

    # then each customer of the lane has exactly what its counterpart has: run and steps, effects, the tag,
    # the lot, the ledger entry, the balance, the membership's joined event; and the lane used no savepoint
    # but its own
    assert _per_customer(lane) == _per_customer(alone)
    assert [row[0] for row in _per_customer(lane)] == ["succeeded"] * 4
    assert [row[6] for row in _per_customer(lane)] == [[(15, 15)]] + [[(10, 10)]] * 3
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 1
