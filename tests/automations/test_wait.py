from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.automations import engine, services
from apps.automations.models import WorkflowRun
from apps.customers import services as customer_services
from apps.tagging.models import CustomerTag
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory, make_order

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday


def tag_names(customer) -> list[str]:
    return sorted(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


def _refund_check_workflow():
    # three days after an order: still unrefunded -> "Happy", refunded meanwhile -> "Refunded"
    return active_workflow(
        "follow-up",
        "order.created",
        [
            add_tags("Ordered", step_id="first"),
            {"id": "pause", "wait": {"days": 3}},
            {
                "id": "check",
                "if": {"field": "customer.refunded_total", "op": "eq", "value": 0},
                "then": [add_tags("Happy", step_id="happy")],
                "else": [add_tags("Refunded", step_id="sad")],
            },
        ],
    )


def test_a_wait_parks_the_run_and_the_resume_sees_fresh_data(fire, queue):
    _refund_check_workflow()
    kept, refunded = CustomerFactory(), CustomerFactory()
    with time_machine.travel(START, tick=False):
        fire(make_order, kept, total="80.00")
        order = fire(make_order, refunded, total="80.00")

    runs = {run.customer_id: run for run in WorkflowRun.objects.all()}
    assert [(r.status, r.resume_at, r.resume_step) for r in runs.values()] == [
        ("waiting", START + timedelta(days=3), "steps[1]")
    ] * 2
    assert tag_names(kept) == ["Ordered"]

    # during the wait one order is refunded (that event has no workflow)
    with time_machine.travel(START + timedelta(days=1), tick=False):
        fire(customer_services.refund_create, order=order, amount="80.00")
        assert engine.runs_resume_due() == 0

    with time_machine.travel(START + timedelta(days=3), tick=False):
        assert engine.runs_resume_due() == 2
        queue.drain()

    assert tag_names(kept) == ["Happy", "Ordered"]
    assert tag_names(refunded) == ["Ordered", "Refunded"]
    run = WorkflowRun.objects.get(customer=kept)
    assert (run.status, run.resume_step, run.resume_at) == ("succeeded", "", None)
    assert list(run.steps.order_by("pk").values_list("path", "status", "branch")) == [
        ("trigger", "succeeded", ""),
        ("steps[0]", "succeeded", ""),
        ("steps[1]", "succeeded", ""),
        ("steps[2]", "succeeded", "then"),
        ("steps[2].then[0]", "succeeded", ""),
    ]
    # the first action ran once although the run executed twice
    assert CustomerTag.objects.filter(customer=kept, tag__name="Ordered").count() == 1


def test_pausing_holds_waiting_runs_until_the_workflow_is_active_again(fire, queue):
    workflow = _refund_check_workflow()
    customer = CustomerFactory()
    with time_machine.travel(START, tick=False):
        fire(make_order, customer)
        services.workflow_pause(workflow=workflow)

    with time_machine.travel(START + timedelta(days=4), tick=False):
        assert engine.runs_resume_due() == 0
        assert WorkflowRun.objects.get().status == "waiting"
        services.workflow_activate(workflow=workflow)
        assert engine.runs_resume_due() == 1
        queue.drain()

    assert tag_names(customer) == ["Happy", "Ordered"]


def test_waiting_runs_stay_on_their_version_when_the_workflow_is_edited(fire, queue):
    workflow = _refund_check_workflow()
    customer = CustomerFactory()
    with time_machine.travel(START, tick=False):
        fire(make_order, customer)
    v1 = workflow.current_version

    edited = services.workflow_update(
        workflow=workflow,
        definition={"schema": 1, "trigger": {"event": "order.created"}, "steps": [add_tags("Version two")]},
    )
    assert (edited.status, edited.has_unpublished_changes, edited.current_version_id) == ("active", True, v1.pk)
    edited = services.workflow_activate(workflow=edited)
    assert edited.current_version.number == 2
    from apps.automations.selectors import waiting_runs_by_version

    assert waiting_runs_by_version(workflow=edited) == {1: 1}

    with time_machine.travel(START + timedelta(days=3), tick=False):
        engine.runs_resume_due()
        queue.drain()

    run = WorkflowRun.objects.get()
    assert run.version_id == v1.pk
    assert tag_names(customer) == ["Happy", "Ordered"]


@pytest.mark.parametrize(
    ("now", "wait", "expected"),
    [
        (START, {"minutes": 90}, START + timedelta(minutes=90)),
        (START, {"hours": 5}, START + timedelta(hours=5)),
        (START, {"days": 365}, START + timedelta(days=365)),
        # 09:00 local (UTC in tests): Monday 12:00 -> Tuesday 09:00
        (START, {"until_time": "09:00"}, datetime(2026, 6, 2, 9, 0, tzinfo=UTC)),
        # later the same day
        (START, {"until_time": "18:30"}, datetime(2026, 6, 1, 18, 30, tzinfo=UTC)),
        # next Saturday or Sunday at 10:00
        (START, {"until_time": "10:00", "weekdays": [5, 6]}, datetime(2026, 6, 6, 10, 0, tzinfo=UTC)),
        # exactly 12:00 on Monday with Monday only -> next Monday
        (START, {"until_time": "12:00", "weekdays": [0]}, datetime(2026, 6, 8, 12, 0, tzinfo=UTC)),
    ],
)
def test_wait_until(now, wait, expected, settings):
    settings.TIME_ZONE = "UTC"
    assert engine.wait_until(wait, now) == expected


def test_a_wait_inside_a_branch_resumes_inside_that_branch(fire, queue):
    active_workflow(
        "branch wait",
        "order.created",
        [
            {
                "if": {"field": "order.total", "op": "gte", "value": 100},
                "then": [{"wait": {"hours": 1}}, add_tags("Big later")],
                "else": [add_tags("Small")],
            },
            add_tags("After"),
        ],
    )
    customer = CustomerFactory()
    with time_machine.travel(START, tick=False):
        fire(make_order, customer, total="150.00")
    assert WorkflowRun.objects.get().resume_step == "steps[0].then[0]"

    with time_machine.travel(START + timedelta(hours=1), tick=False):
        engine.runs_resume_due()
        queue.drain()

    assert tag_names(customer) == ["After", "Big later"]
