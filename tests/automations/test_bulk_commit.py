"""
How a bulk chunk commits on PostgreSQL: asynchronously (no wait for the WAL flush) when nothing outside the
database acts on its commit, with the same rows, the same exactly-once progress and the setting local to it.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction

from apps.automations import bulk
from apps.automations.models import WorkflowRun
from apps.automations.services import workflow_activate, workflow_create
from apps.tagging.models import CustomerTag, TagAudit
from tests.automations.bulk_workflows import bulk_workflow_create
from tests.factories import CustomerFactory, make_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def commits(monkeypatch):
    """The `synchronous_commit` in force at each COMMIT this connection sends (asked just before it)."""
    seen: list[str] = []
    commit = connection._commit

    def recording_commit():
        with connection.connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen.append(cursor.fetchone()[0])
        return commit()

    monkeypatch.setattr(connection, "_commit", recording_commit)
    return seen


def lapsed_customers(count: int) -> list[int]:
    """`count` customers in the inactive high-value audience and one who is not (ordered recently)."""
    ids = []
    for _ in range(count):
        customer = CustomerFactory()
        make_order(customer, total="700.00", placed_at=NOW - timedelta(days=45))
        ids.append(customer.pk)
    make_order(CustomerFactory(), total="900.00", placed_at=NOW - timedelta(days=3))
    return ids


def tag_rows(tag: str) -> set[tuple]:
    return set(
        CustomerTag.objects.filter(tag__name=tag).values_list("customer_id", "source", "added_by_id", "added_at")
    )


def audit_rows(tag: str) -> list[tuple]:
    return sorted(
        TagAudit.objects.filter(tag_name=tag).values_list("customer_id", "action", "source", "actor_id", "created_at")
    )


def show_synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_each_chunk_commits_without_waiting_for_the_flush_and_the_setting_stays_in_its_transaction(
    frozen, monkeypatch, commits
):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 3)
    ids = lapsed_customers(7)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))
    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
    commits.clear()  # the start's own commit is an ordinary one

    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)

    run.refresh_from_db()
    assert commits == ["off", "off", "off"]
    assert show_synchronous_commit() == "on"  # SET LOCAL: the pooled connection keeps its durable default
    assert (run.status, run.progress["chunks_done"], run.progress["done_chunks"]) == ("succeeded", 3, [0, 1, 2])
    assert {customer_id for customer_id, *_ in tag_rows("Lapsed")} == set(ids)
    assert len(audit_rows("Lapsed")) == 7


def test_a_redelivered_chunk_after_an_asynchronous_commit_adds_nothing(frozen, monkeypatch, commits):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 3)
    lapsed_customers(5)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))
    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
    bulk.bulk_chunk_process(run_id=run.pk, index=0)
    before = (tag_rows("Lapsed"), audit_rows("Lapsed"))
    commits.clear()

    assert bulk.bulk_chunk_process(run_id=run.pk, index=0) is None

    run.refresh_from_db()
    assert (tag_rows("Lapsed"), audit_rows("Lapsed")) == before
    assert (run.progress["chunks_done"], run.progress["matched"], run.progress["actions"]) == (1, 3, {"s1": 3})
    assert commits == []  # nothing written, nothing committed


def test_the_committed_run_writes_exactly_the_rows_of_the_rolled_back_run(frozen, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 4)
    lapsed_customers(9)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))

    with transaction.atomic():  # the benchmark's rolled-back run: every chunk inside one outer transaction
        rolled_back_run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
        for index in range(rolled_back_run.progress["chunks_total"]):
            bulk.bulk_chunk_process(run_id=rolled_back_run.pk, index=index)
        rolled_back = (tag_rows("Lapsed"), audit_rows("Lapsed"))
        rolled_back_run.refresh_from_db()
        rolled_back_progress = rolled_back_run.progress
        transaction.set_rollback(True)
    assert tag_rows("Lapsed") == set()

    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)

    run.refresh_from_db()
    assert len(rolled_back[0]) == 9
    assert (tag_rows("Lapsed"), audit_rows("Lapsed")) == rolled_back
    assert run.progress == rolled_back_progress
    assert set(CustomerTag.objects.values_list("source_ref", flat=True)) == {f"bulk_run:{run.pk}"}


def test_a_chunk_with_after_commit_work_waits_for_its_flush(frozen, settings, commits, mailoutbox):
    settings.TASKS_SYNC = True  # the e-mails are sent by tasks after the chunk commits
    customer = CustomerFactory(email="ann@example.com", accepts_marketing=True)
    workflow = workflow_create(
        name="Hello",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.bulk_activity"},
            "steps": [{"id": "s1", "action": "notify.email", "params": {"subject": "Hi", "body": "News."}}],
        },
    )
    run = bulk.bulk_run_start(workflow=workflow_activate(workflow=workflow), enqueue=False)
    commits.clear()

    bulk.bulk_chunk_process(run_id=run.pk, index=0)

    assert commits[0] == "on"  # the chunk's own commit; the sending task's commits follow it
    assert [message.to for message in mailoutbox] == [[customer.email]]
    assert WorkflowRun.objects.get(pk=run.pk).status == "succeeded"


def test_a_committed_chunk_fires_its_deferred_checks_before_it_takes_the_runs_row(frozen, monkeypatch):
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(bulk, "CHUNK_SIZE", 3)
    lapsed_customers(2)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))
    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)

    with CaptureQueriesContext(connection) as queries:
        bulk.bulk_chunk_process(run_id=run.pk, index=0)

    statements = [query["sql"] for query in queries.captured_queries]
    checks = statements.index("SET CONSTRAINTS ALL IMMEDIATE")
    run_lock = next(n for n, sql in enumerate(statements) if "automations_workflowrun" in sql and "FOR UPDATE" in sql)
    tag_insert = next(n for n, sql in enumerate(statements) if "INSERT INTO" in sql and "tagging_customertag" in sql)
    assert tag_insert < checks < run_lock  # after the chunk's rows, before the lock held until the COMMIT
    assert len(tag_rows("Lapsed")) == 2


def test_inside_a_callers_transaction_the_chunk_leaves_the_constraints_to_the_caller(frozen, monkeypatch):
    from django.test.utils import CaptureQueriesContext

    lapsed_customers(2)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))
    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        bulk.bulk_chunk_process(run_id=run.pk, index=0)
        transaction.set_rollback(True)

    assert not any("SET CONSTRAINTS" in query["sql"] for query in queries.captured_queries)


def test_run_workflow_with_jobs_commits_every_chunk_once_with_the_rows_of_a_serial_run(frozen, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    monkeypatch.setattr(bulk, "CHUNK_SIZE", 2)
    lapsed_customers(11)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))
    with transaction.atomic():  # the serial run, rolled back
        serial_run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
        for index in range(serial_run.progress["chunks_total"]):
            bulk.bulk_chunk_process(run_id=serial_run.pk, index=index)
        serial = (tag_rows("Lapsed"), audit_rows("Lapsed"))
        serial_run.refresh_from_db()
        serial_progress = serial_run.progress
        transaction.set_rollback(True)
    out = StringIO()

    call_command("run_workflow", str(workflow.pk), "--wait", "--jobs", "3", stdout=out)

    run = WorkflowRun.objects.exclude(pk=serial_run.pk).get(workflow=workflow, kind="bulk")
    assert serial_progress["chunks_total"] >= 6
    assert len(serial[0]) == 11
    assert (tag_rows("Lapsed"), audit_rows("Lapsed")) == serial
    assert sorted(run.progress.pop("done_chunks")) == sorted(serial_progress.pop("done_chunks"))
    assert run.progress == serial_progress
    assert run.status == "succeeded"
    assert "succeeded: matched 11, processed 11, errors 0" in out.getvalue()


def test_run_workflow_refuses_jobs_below_one(frozen):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    lapsed_customers(1)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))

    with pytest.raises(CommandError, match="--jobs"):
        call_command("run_workflow", str(workflow.pk), "--wait", "--jobs", "0")

    assert not WorkflowRun.objects.filter(workflow=workflow, kind="bulk").exists()  # refused before it started


@pytest.mark.parametrize(("asked", "workers"), [(None, 2), (None, 3), (1, 3), (4, 2)])
def test_run_workflow_processes_as_many_chunks_at_once_as_the_workers_would_unless_told(
    frozen, monkeypatch, settings, asked, workers
):
    from io import StringIO

    from django.core.management import call_command

    from apps.automations.management.commands import run_workflow

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": workers}
    seen: list[int] = []
    processed = run_workflow._chunks_process
    monkeypatch.setattr(
        run_workflow, "_chunks_process", lambda run_id, total, jobs: (seen.append(jobs), processed(run_id, total, jobs))
    )
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 2)
    lapsed_customers(5)
    workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))
    arguments = [str(workflow.pk), "--wait"] + ([] if asked is None else ["--jobs", str(asked)])
    out = StringIO()

    call_command("run_workflow", *arguments, stdout=out)

    # PostgreSQL: what was asked, else the workers' count (Q_WORKERS); SQLite has one writer: always 1.
    expected = (workers if asked is None else asked) if connection.vendor == "postgresql" else 1
    assert seen == [expected]
    assert len(tag_rows("Lapsed")) == 5
    assert "succeeded: matched 5, processed 5, errors 0" in out.getvalue()


def test_run_workflow_inside_a_transaction_processes_one_chunk_at_a_time(frozen, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    from apps.automations.management.commands import run_workflow

    seen: list[int] = []
    processed = run_workflow._chunks_process
    monkeypatch.setattr(
        run_workflow, "_chunks_process", lambda run_id, total, jobs: (seen.append(jobs), processed(run_id, total, jobs))
    )
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 2)
    out = StringIO()
    with transaction.atomic():  # other connections could not see these customers
        lapsed_customers(5)
        workflow = workflow_activate(workflow=bulk_workflow_create("inactive_high_value", {"tag": "Lapsed"}))

        call_command("run_workflow", str(workflow.pk), "--wait", "--jobs", "3", stdout=out)

        assert seen == [1]
        assert len(tag_rows("Lapsed")) == 5
    assert "succeeded: matched 5, processed 5, errors 0" in out.getvalue()
