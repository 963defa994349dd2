import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from apps.automations import engine, registry, services
from apps.automations.engine import opening, sets
from apps.automations.models import ActionEffect, WorkflowRun, WorkflowRunStep
from apps.customers import outbox
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent
from apps.tagging import services as tag_services
from apps.tagging.models import CustomerTag, TagAudit
from tests.automations.test_engine_support import active_workflow, add_tags, definition
from tests.factories import CustomerFactory, ProductFactory, StoreFactory, make_order

pytestmark = pytest.mark.django_db


def tag_names(customer) -> list[str]:
    return sorted(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


# --- Every trigger fires exactly its workflows ------------------------------------------------------


def _order(customer):
    return make_order(customer, total="50.00")


TRIGGER_WRITES = {
    "customer.registered": lambda c: customer_services.customer_create(email="new@example.com"),
    "customer.activated": lambda c: customer_services.customer_activate(customer=c),
    "customer.unsubscribed": lambda c: customer_services.customer_unsubscribe(customer=c),
    "order.created": _order,
    "order.cancelled": lambda c: customer_services.order_cancel(order=c.orders.get()),
    "order.refunded": lambda c: customer_services.refund_create(order=c.orders.get(), amount="10.00"),
    "product.purchased": lambda c: make_order(c, products=[ProductFactory(), ProductFactory()]),
    "draft_order.created": lambda c: customer_services.draft_order_create(
        customer=c, currency="USD", lines=[{"title": "Mug", "quantity": 1, "unit_price": "5.00"}]
    ),
    "cart.abandoned": lambda c: customer_services.cart_upsert(
        customer=c,
        currency="USD",
        lines=[{"title": "Mug", "quantity": 1, "unit_price": "5.00"}],
        abandoned_at=datetime(2026, 5, 1, tzinfo=UTC),
    ),
    "event.custom": lambda c: customer_services.custom_event_record(customer=c, name="newsletter_signup"),
    "customer.near_store": lambda c: customer_services.location_report(customer=c, latitude=52.5200, longitude=13.4050),
    "customer.tag_added": lambda c: tag_services.tags_add(customer=c, names=["VIP"]),
}


@pytest.mark.parametrize("trigger", sorted(TRIGGER_WRITES))
def test_every_data_plane_trigger_runs_the_workflows_listening_to_it_and_no_other(trigger, fire):
    # given one active workflow per trigger, each adding a tag named after it, and a store for pings
    StoreFactory(latitude=52.5200, longitude=13.4050, radius_m=500)
    customer = CustomerFactory()
    if trigger in ("order.cancelled", "order.refunded"):
        fire(_order, customer)  # before the workflows are active
    for name in TRIGGER_WRITES:
        # (the tag-added workflow listens to "VIP" only: the others' own tags must not fire it)
        where = {"field": "tag.name", "op": "eq", "value": "VIP"} if name == "customer.tag_added" else None
        active_workflow(f"on {name}", name, [add_tags(f"fired {name}")], where=where)

    # when the write that emits the trigger happens and the worker runs
    result = fire(TRIGGER_WRITES[trigger], customer)

    # then only that trigger's workflow ran (an order with two products also is an order.created),
    # once per emitted event, for the event's customer
    target = result if trigger == "customer.registered" else customer
    runs = WorkflowRun.objects.exclude(status="skipped")
    expected = {"product.purchased": ["order.created", trigger, trigger], "order.created": [trigger]}.get(
        trigger, [trigger]
    )
    assert sorted(runs.values_list("workflow__trigger", flat=True)) == expected
    fired = [name for name in tag_names(target) if name.startswith("fired ")]
    assert fired == sorted({f"fired {name}" for name in expected})
    assert DomainEvent.objects.filter(status="pending").count() == 0


def test_a_draft_or_paused_workflow_does_not_run(fire):
    draft = services.workflow_create(name="draft", definition=definition("order.created", [add_tags("D")]))
    paused = active_workflow("paused", "order.created", [add_tags("P")])
    services.workflow_pause(workflow=paused)
    customer = CustomerFactory()

    fire(_order, customer)

    assert WorkflowRun.objects.filter(workflow__in=[draft, paused]).count() == 0
    assert tag_names(customer) == []


# --- Tag actions: source and cause ---------------------------------------------------------------------


def test_added_tags_name_the_run_as_their_source(fire):
    workflow = active_workflow("welcome", "customer.activated", [add_tags("Member", "Welcome")])
    customer = CustomerFactory()

    fire(customer_services.customer_activate, customer=customer)

    run = WorkflowRun.objects.get(workflow=workflow)
    rows = CustomerTag.objects.filter(customer=customer).order_by("tag__name")
    assert [(r.tag.name, r.source, r.source_ref) for r in rows] == [
        ("Member", "workflow", f"workflow_run:{run.pk}"),
        ("Welcome", "workflow", f"workflow_run:{run.pk}"),
    ]
    step = run.steps.get(path="steps[0]")
    assert (step.kind, step.status) == ("action", "succeeded")
    assert step.inputs == {"action": "customer.add_tags", "params": {"tags": ["Member", "Welcome"]}}
    assert step.outcome == {"tags": ["Member", "Welcome"], "added": ["Member", "Welcome"]}


def test_remove_tags_and_update_attribute(fire):
    active_workflow(
        "clean up",
        "customer.unsubscribed",
        [
            {"action": "customer.remove_tags", "params": {"tags": ["Newsletter"]}},
            {"action": "customer.update_attribute", "params": {"field": "attribute", "key": "why", "value": "unsub"}},
        ],
    )
    customer = CustomerFactory()
    tag_services.tags_add(customer=customer, names=["Newsletter", "VIP"])

    fire(customer_services.customer_unsubscribe, customer=customer)

    customer.refresh_from_db()
    assert tag_names(customer) == ["VIP"]
    assert customer.attributes == {"why": "unsub"}


# --- Idempotent re-delivery ----------------------------------------------------------------------------


def test_the_same_event_task_delivered_twice_makes_one_tag_one_email_one_webhook(
    fire, queue, receiver, django_capture_on_commit_callbacks
):
    workflow = active_workflow(
        "effects",
        "customer.activated",
        [
            add_tags("Once"),
            {"action": "notify.email", "params": {"subject": "Hello", "body": "Welcome"}},
            {"action": "notify.webhook", "params": {"url": receiver.url, "secret": "whsec_c2VjcmV0"}},
        ],
    )
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        customer_services.customer_activate(customer=customer)
    [(_, args)] = queue.calls

    # when the queue delivers the task, then delivers it again (and a third time after un-marking the event)
    queue.drain()
    engine.domain_event_process(event_id=args[0])
    DomainEvent.objects.filter(pk=args[0]).update(status="pending")
    engine.domain_event_process(event_id=args[0])

    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1
    assert CustomerTag.objects.filter(customer=customer).count() == 1
    assert TagAudit.objects.filter(customer=customer).count() == 1
    assert len(mail.outbox) == 1
    assert len(receiver.requests) == 1
    assert ActionEffect.objects.filter(status="done").count() == 3


def test_a_run_executed_again_after_its_effects_does_not_repeat_them(fire, receiver):
    active_workflow(
        "effects",
        "customer.activated",
        [
            {"action": "notify.email", "params": {"subject": "Hello", "body": "Welcome"}},
            {"action": "notify.webhook", "params": {"url": receiver.url, "secret": "whsec_c2VjcmV0"}},
        ],
    )
    customer = CustomerFactory()
    fire(customer_services.customer_activate, customer=customer)
    run = WorkflowRun.objects.get()

    # a worker died after the effects but before the run was marked done: the task comes back
    WorkflowRun.objects.filter(pk=run.pk).update(status="pending")
    engine.run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.attempts == 2
    assert len(mail.outbox) == 1
    assert len(receiver.requests) == 1
    assert run.steps.get(path="steps[1]").outcome["already_done"] is True


# --- Loop guard and chain depth --------------------------------------------------------------------------


def test_a_workflow_retriggering_itself_runs_once_and_records_the_loop_guard(fire):
    workflow = active_workflow(
        "tag echo", "customer.tag_added", [add_tags("Echo")], where={"field": "tag.name", "op": "ne", "value": "zzz"}
    )
    customer = CustomerFactory()

    fire(tag_services.tags_add, customer=customer, names=["Start"])

    runs = list(WorkflowRun.objects.filter(workflow=workflow).order_by("pk"))
    assert [(r.status, r.depth) for r in runs] == [("succeeded", 0), ("skipped", 1)]
    assert (
        runs[1].skip_reason == f"loop guard: triggered by this workflow's own run #{runs[0].pk} for the same customer"
    )
    assert tag_names(customer) == ["Echo", "Start"]


def test_a_chain_of_workflows_stops_at_the_depth_limit(fire, settings):
    settings.AUTOMATIONS_MAX_CHAIN_DEPTH = 2
    chain = ["a", "b", "c", "d", "e"]
    for here, there in itertools.pairwise(chain):
        active_workflow(
            f"{here}->{there}",
            "customer.tag_added",
            [add_tags(there)],
            where={"field": "tag.name", "op": "eq", "value": here},
        )
    customer = CustomerFactory()

    fire(tag_services.tags_add, customer=customer, names=["a"])

    # runs a->b (depth 0), b->c (1), c->d (2); d->e would be depth 3: skipped, so no "e"
    assert tag_names(customer) == ["a", "b", "c", "d"]
    stopped = WorkflowRun.objects.get(status="skipped", skip_reason__startswith="chain")
    assert stopped.workflow.name == "d->e"
    assert stopped.depth == 3
    assert stopped.skip_reason.startswith("chain depth limit reached (2)")


# --- Retries, dead runs, replay -----------------------------------------------------------------------


@pytest.fixture
def flaky_action():
    calls = {"fail": True, "count": 0}

    def run(context, params, effect_key):
        calls["count"] += 1
        if calls["fail"]:
            raise registry.TransientActionError("remote answered 503")
        return {"ok": True}

    registry.register_action(registry.ActionSpec(name="test.flaky", label="Flaky", run=run))
    yield calls
    registry._actions.pop("test.flaky", None)


@pytest.mark.parametrize("lane", [False, True], ids=["per-event", "set-lane"])
def test_transient_failures_back_off_then_the_run_dies_and_a_replay_completes_it(
    fire, queue, flaky_action, settings, lane
):
    # lane: on PostgreSQL a fresh event first goes through the batch's set-based lane, whose failed try is
    # rolled back (the "Before" tag with it) and redone on the per-event path: one more call of the action on
    # the first attempt, the same run state. Elsewhere (SQLite) both go the per-event path.
    settings.AUTOMATIONS_EVENT_SETS = lane
    lane_try = 1 if lane and connection.vendor == "postgresql" else 0
    active_workflow("flaky", "customer.activated", [add_tags("Before"), {"action": "test.flaky", "params": {}}])
    customer = CustomerFactory()
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    with time_machine.travel(start, tick=False):
        fire(customer_services.customer_activate, customer=customer)
    run = WorkflowRun.objects.get()
    assert (run.status, run.attempts, run.next_attempt_at) == ("pending", 1, start + timedelta(seconds=30))
    assert run.resume_step == "steps[1]"
    assert run.error == "TransientActionError: remote answered 503"

    # retries come due one after the other with doubling delays, until max_attempts (5)
    moment = start
    for attempt, delay in ((2, 60), (3, 120), (4, 240)):
        moment = run.next_attempt_at
        with time_machine.travel(moment - timedelta(seconds=1), tick=False):
            assert engine.runs_retry_due() == 0
        with time_machine.travel(moment, tick=False):
            assert engine.runs_retry_due() == 1
            queue.drain()
        run.refresh_from_db()
        assert (run.status, run.attempts, run.next_attempt_at) == (
            "pending",
            attempt,
            moment + timedelta(seconds=delay),
        )
    with time_machine.travel(run.next_attempt_at, tick=False):
        engine.runs_retry_due()
        queue.drain()
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("dead", 5)
    assert flaky_action["count"] == 5 + lane_try
    assert tag_names(customer) == ["Before"]  # the first action ran once, not five times
    assert TagAudit.objects.filter(customer=customer).count() == 1

    # replay after the remote recovered: the run resumes at the failed action
    flaky_action["fail"] = False
    services.run_replay(run=run)
    queue.drain()
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error) == ("succeeded", 1, "")
    assert flaky_action["count"] == 6 + lane_try
    assert TagAudit.objects.filter(customer=customer).count() == 1


def test_replay_refuses_a_run_that_is_not_dead_and_changes_nothing(fire):
    active_workflow("ok", "customer.activated", [add_tags("x")])
    customer = CustomerFactory()
    fire(customer_services.customer_activate, customer=customer)
    run = WorkflowRun.objects.get()

    with pytest.raises(services.ValidationError) as error:
        services.run_replay(run=run)

    assert error.value.message_dict == {
        "status": ["Only a dead or failed run can be replayed (this one is succeeded)."]
    }
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("succeeded", 1)


def test_a_run_whose_worker_keeps_dying_ends_dead(fire, queue):
    active_workflow("ok", "customer.activated", [add_tags("x")])
    customer = CustomerFactory()
    with time_machine.travel(datetime(2026, 6, 1, tzinfo=UTC), tick=False):
        fire(customer_services.customer_activate, customer=customer)
    run = WorkflowRun.objects.get()
    # the worker died mid-run max_attempts times: the row says running with all attempts spent
    WorkflowRun.objects.filter(pk=run.pk).update(status="running", attempts=5)

    with time_machine.travel(datetime(2026, 6, 1, 1, 0, tzinfo=UTC), tick=False):
        assert engine.runs_retry_due() == 1
        queue.drain()

    run.refresh_from_db()
    assert run.status == "dead"
    assert run.error == "attempts exhausted (the worker may have died)"


def test_a_permanent_action_failure_fails_the_run_with_the_error(fire, settings):
    settings.AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS = True
    active_workflow(
        "hook",
        "customer.activated",
        [{"action": "notify.webhook", "params": {"url": "http://example.com/x", "secret": "whsec_c2VjcmV0"}}],
    )
    customer = CustomerFactory()

    fire(customer_services.customer_activate, customer=customer)

    run = WorkflowRun.objects.get()
    assert run.status == "failed"
    assert run.error == "WebhookRefused: Only https URLs are allowed."
    assert run.steps.get(path="steps[0]").status == "failed"


# --- Skipped runs and their reasons -------------------------------------------------------------------


def test_outside_the_active_window_the_run_is_skipped_with_the_reason(fire):
    active_workflow(
        "window",
        "customer.activated",
        [add_tags("x")],
        active_from="2026-06-01T00:00:00+00:00",
        active_until="2026-07-01T00:00:00+00:00",
    )
    early, inside, late = CustomerFactory(), CustomerFactory(), CustomerFactory()

    with time_machine.travel(datetime(2026, 5, 31, 23, 59, tzinfo=UTC), tick=False):
        fire(customer_services.customer_activate, customer=early)
    with time_machine.travel(datetime(2026, 6, 15, tzinfo=UTC), tick=False):
        fire(customer_services.customer_activate, customer=inside)
    with time_machine.travel(datetime(2026, 7, 1, tzinfo=UTC), tick=False):
        fire(customer_services.customer_activate, customer=late)

    runs = {run.customer_id: run for run in WorkflowRun.objects.all()}
    assert runs[early.pk].skip_reason == "outside the active window (starts 2026-06-01T00:00:00+00:00)"
    assert runs[inside.pk].status == "succeeded"
    assert runs[late.pk].skip_reason == "outside the active window (ended 2026-07-01T00:00:00+00:00)"
    assert [tag_names(c) for c in (early, inside, late)] == [[], ["x"], []]


def test_per_customer_limit_per_period_and_minimum_interval(fire):
    workflow = active_workflow(
        "twice a week",
        "event.custom",
        [add_tags("x")],
        max_runs_per_customer=2,
        max_runs_period_days=7,
        min_interval_minutes=60,
    )
    customer = CustomerFactory()
    moments = [
        datetime(2026, 6, 1, 10, 0, tzinfo=UTC),  # runs
        datetime(2026, 6, 1, 10, 30, tzinfo=UTC),  # within 60 minutes: skipped
        datetime(2026, 6, 1, 11, 0, tzinfo=UTC),  # runs (2nd in 7 days)
        datetime(2026, 6, 5, 11, 0, tzinfo=UTC),  # limit reached
        datetime(2026, 6, 8, 10, 1, tzinfo=UTC),  # the first run left the window: runs
    ]
    for moment in moments:
        with time_machine.travel(moment, tick=False):
            fire(customer_services.custom_event_record, customer=customer, name="visit")

    runs = WorkflowRun.objects.filter(workflow=workflow).order_by("created_at")
    assert [(r.status, r.skip_reason) for r in runs] == [
        ("succeeded", ""),
        ("skipped", "minimum interval not elapsed (60 minutes since the last run)"),
        ("succeeded", ""),
        ("skipped", "per-customer limit reached (2 runs in 7 days)"),
        ("succeeded", ""),
    ]


def test_only_once_per_customer(fire):
    workflow = active_workflow("once", "event.custom", [add_tags("x")], max_runs_per_customer=1)
    customer = CustomerFactory()

    fire(customer_services.custom_event_record, customer=customer, name="visit")
    fire(customer_services.custom_event_record, customer=customer, name="visit")

    assert list(WorkflowRun.objects.filter(workflow=workflow).order_by("pk").values_list("status", "skip_reason")) == [
        ("succeeded", ""),
        ("skipped", "per-customer limit reached (1 run)"),
    ]


# --- Outbox sweep ------------------------------------------------------------------------------------------


def test_the_sweep_re_enqueues_events_left_pending_for_more_than_a_minute(queue):
    customer = CustomerFactory()
    old = DomainEvent.objects.create(
        name="customer.activated", customer=customer, created_at=datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    )
    DomainEvent.objects.create(
        name="customer.activated", customer=customer, created_at=datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
    )
    DomainEvent.objects.create(
        name="customer.activated",
        customer=customer,
        status="processed",
        created_at=datetime(2026, 6, 1, 11, 0, tzinfo=UTC),
    )

    with time_machine.travel(datetime(2026, 6, 1, 12, 1, 10, tzinfo=UTC), tick=False):
        assert outbox.outbox_sweep() == 1

    assert queue.calls == [("apps.automations.tasks.process_domain_event", (old.pk,))]


def test_an_event_without_active_workflows_is_marked_processed(fire):
    customer = CustomerFactory()

    fire(customer_services.customer_activate, customer=customer)

    event = DomainEvent.objects.get(name="customer.activated")
    assert event.status == "processed"
    assert WorkflowRun.objects.count() == 0
    assert WorkflowRunStep.objects.count() == 0


def test_an_event_no_active_workflow_listens_to_is_recorded_processed_without_a_task(
    queue, django_capture_on_commit_callbacks
):
    active_workflow("orders only", "order.created", [add_tags("x")])
    customer = CustomerFactory()

    with django_capture_on_commit_callbacks(execute=True):
        customer_services.customer_activate(customer=customer)
        make_order(customer)

    assert queue.names() == ["process_domain_event"]
    assert dict(DomainEvent.objects.values_list("name", "status")) == {
        "customer.activated": "processed",
        "order.created": "pending",
    }


def test_a_database_action_that_fails_midway_leaves_no_effect_and_replay_resumes_at_it(fire, queue):
    calls = {"fail": True}

    def run(context, params, effect_key):
        tag_services.tags_add(customer=context.customer, names=["Half done"])
        if calls["fail"]:
            raise ValueError("boom after a write")
        return {"ok": True}

    registry.register_action(registry.ActionSpec(name="test.halfway", label="Halfway", run=run))
    try:
        active_workflow("halfway", "customer.activated", [add_tags("First"), {"action": "test.halfway"}])
        customer = CustomerFactory()

        fire(customer_services.customer_activate, customer=customer)

        run_row = WorkflowRun.objects.get()
        assert (run_row.status, run_row.error, run_row.resume_step) == (
            "failed",
            "ValueError: boom after a write",
            "steps[1]",
        )
        assert tag_names(customer) == ["First"]  # the failed action's own write was rolled back
        assert list(ActionEffect.objects.values_list("path", "status")) == [("steps[0]", "done")]

        calls["fail"] = False
        services.run_replay(run=run_row)
        queue.drain()
        run_row.refresh_from_db()
        assert run_row.status == "succeeded"
        assert tag_names(customer) == ["First", "Half done"]
        assert TagAudit.objects.filter(customer=customer, tag_name="First").count() == 1
    finally:
        registry._actions.pop("test.halfway", None)


def test_a_trigger_filter_that_cannot_be_evaluated_fails_its_run_and_the_event_is_still_processed(fire, monkeypatch):
    broken = active_workflow(
        "broken", "customer.activated", [add_tags("x")], where={"field": "customer.country", "op": "eq", "value": "US"}
    )
    healthy = active_workflow("healthy", "customer.activated", [add_tags("y")])

    def explode(condition, context):
        raise RuntimeError("catalog reader crashed")

    monkeypatch.setattr(opening, "evaluate", explode)
    monkeypatch.setattr(sets, "evaluate", explode)  # the batch's set-based lane (PostgreSQL) evaluates too
    customer = CustomerFactory()

    fire(customer_services.customer_activate, customer=customer)

    runs = {run.workflow_id: run for run in WorkflowRun.objects.all()}
    assert (runs[broken.pk].status, runs[broken.pk].error) == ("failed", "RuntimeError: catalog reader crashed")
    assert runs[healthy.pk].status == "succeeded"
    assert tag_names(customer) == ["y"]
    assert DomainEvent.objects.get(name="customer.activated").status == "processed"
