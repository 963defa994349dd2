"""Two clusters ticking at the same moment on PostgreSQL: one run per slot, never two."""

from datetime import UTC, datetime

import pytest
import time_machine

from apps.automations import bulk
from apps.automations.models import WorkflowRun
from apps.automations.services import workflow_activate
from tests.automations.bulk_workflows import bulk_workflow_create
from tests.factories import CustomerFactory
from tests.threads import raised, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_clusters_ticking_together_create_one_run_for_the_slot():
    CustomerFactory.create_batch(3)
    with time_machine.travel(datetime(2026, 6, 15, 12, 0, tzinfo=UTC), tick=False):
        workflows = [
            workflow_activate(
                workflow=bulk_workflow_create("inactive_high_value", {"schedule": "0 3 * * *"}, name=f"Nightly {n}")
            )
            for n in range(3)
        ]
    with time_machine.travel(datetime(2026, 6, 16, 3, 0, 5, tzinfo=UTC), tick=False):
        results = run_together(*[bulk.bulk_schedules_tick] * 4)

    assert raised(results) == []
    created = sorted(run_id for ticked in results for run_id in ticked)
    assert len(results) == 4
    assert len(created) == 3
    for workflow in workflows:
        assert list(WorkflowRun.objects.filter(workflow=workflow).values_list("slot", flat=True)) == [
            "cron:2026-06-16T03:00"
        ]


def test_run_now_twice_at_once_starts_one_run():
    CustomerFactory.create_batch(2)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {}))
    errors: list = []

    def start():
        try:
            return bulk.bulk_run_start(workflow=workflow, enqueue=False).pk
        except Exception as error:
            errors.append(type(error).__name__)
            return None

    run_together(start, start)

    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1
    assert errors == ["ConflictError"]
