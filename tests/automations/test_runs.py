from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django_q.models import Schedule

from apps.automations.checks import q_cluster_check
from apps.automations.models import WorkflowRun, WorkflowRunStep
from apps.customers import services as customer_services
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_setup_schedules_is_idempotent_and_removes_jobs_no_longer_declared():
    Schedule.objects.create(
        name="automations: old job", func="apps.automations.tasks.gone", schedule_type="C", cron="* * * * *"
    )
    Schedule.objects.create(name="someone else", func="other.module.job", schedule_type="C", cron="* * * * *")

    call_command("setup_schedules", stdout=StringIO())
    first = set(Schedule.objects.values_list("name", "func", "cron"))
    out = StringIO()
    call_command("setup_schedules", stdout=out)

    assert set(Schedule.objects.values_list("name", "func", "cron")) == first
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {
        "automations: outbox sweep",
        "automations: retry due runs",
        "automations: resume waiting runs",
        "automations: prune old runs",
        "automations: bulk schedules",
    } <= names
    assert "automations: old job" not in names
    assert "someone else" in names
    assert out.getvalue().startswith("Schedules: 0 created, ")
    assert out.getvalue().endswith(" updated, 0 removed.\n")


def test_prune_runs_deletes_finished_runs_past_the_retention_only(fire, settings):
    settings.AUTOMATIONS_RUN_RETENTION_DAYS = 30
    active_workflow("w", "customer.activated", [add_tags("x")])
    waiting = active_workflow("wait", "customer.activated", [{"wait": {"days": 365}}])
    old, recent = CustomerFactory(), CustomerFactory()
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        fire(customer_services.customer_activate, customer=old)
    with time_machine.travel(datetime(2026, 2, 15, tzinfo=UTC), tick=False):
        fire(customer_services.customer_activate, customer=recent)

    out = StringIO()
    with time_machine.travel(datetime(2026, 3, 1, tzinfo=UTC), tick=False):
        call_command("prune_runs", stdout=out)

    assert out.getvalue() == "Deleted 1 run(s).\n"
    left = WorkflowRun.objects.order_by("pk").values_list("customer_id", "status", "workflow_id")
    assert list(left) == [
        (old.pk, "waiting", waiting.pk),
        (recent.pk, "succeeded", left[1][2]),
        (recent.pk, "waiting", waiting.pk),
    ]
    assert not WorkflowRunStep.objects.filter(run__customer=old, run__status="succeeded").exists()


def test_the_start_up_check_refuses_a_timeout_not_below_retry(settings):
    settings.Q_CLUSTER = {"timeout": 300, "retry": 300, "max_attempts": 0}

    assert [error.id for error in q_cluster_check()] == ["automations.E001", "automations.E002"]

    settings.Q_CLUSTER = {"timeout": 120, "retry": 180, "max_attempts": 3}
    assert q_cluster_check() == []


def test_runs_retry_due_picks_up_pending_runs_never_executed(queue):
    workflow = active_workflow("w", "customer.activated", [add_tags("x")])
    customer = CustomerFactory()
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        run = WorkflowRun.objects.create(workflow=workflow, version=workflow.current_version, customer=customer)

    from apps.automations import engine

    with time_machine.travel(datetime(2026, 1, 1, 0, 0, 59, tzinfo=UTC), tick=False):
        assert engine.runs_retry_due() == 0
    with time_machine.travel(datetime(2026, 1, 1, 0, 1, 1, tzinfo=UTC), tick=False):
        assert engine.runs_retry_due() == 1
        assert queue.calls == [("apps.automations.tasks.run_execute", (run.pk,))]
        queue.drain()
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("succeeded", 1)
    assert run.finished_at == datetime(2026, 1, 1, 0, 1, 1, tzinfo=UTC)
