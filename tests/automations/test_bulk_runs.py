"""Bulk customer activity runs: audience and branches in SQL, chunks, progress, slots, overlap."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.automations import bulk, gallery
from apps.automations.models import Workflow, WorkflowRun
from apps.automations.services import workflow_activate, workflow_pause
from apps.customers import services as customer_services
from apps.platform.authentication import token_digest, token_generate
from apps.platform.models import ApiToken
from apps.tagging import services as tag_services
from apps.tagging.models import CustomerTag
from tests.automations.bulk_workflows import NAMES, bulk_workflow_create
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def api(user):
    raw = token_generate()
    ApiToken.objects.create(user=user, name="tests", prefix=raw[:8], digest=token_digest(raw), scopes=["workflows"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def worker(settings, django_capture_on_commit_callbacks):
    """Run django-q2 tasks inline once the enqueuing transaction commits, as a worker would."""
    settings.TASKS_SYNC = True

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


def tags(customer) -> set[str]:
    return set(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


def install(key: str, params: dict, user) -> Workflow:
    if key in NAMES:  # the scheduled versions of the two templates that are state tags now
        workflow = bulk_workflow_create(key, params, user=user)
    else:
        workflow = gallery.template_install(key=key, params=params, user=user)
    return workflow_activate(workflow=workflow, user=user)


def process_all(run: WorkflowRun) -> WorkflowRun:
    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)
    run.refresh_from_db()
    return run


def inactive_high_value_people():
    """Customers around every edge of "no order in 30 days and spent >= 500"."""
    at = {
        "edge_spent": CustomerFactory(),  # 500.00 exactly, 31 days ago -> in
        "recent": CustomerFactory(),  # 900, 29 days ago -> out (ordered recently)
        "below": CustomerFactory(),  # 499.99, 40 days ago -> out
        "refunded": CustomerFactory(),  # 600 - 150 refunded = 450 -> out
        "cancelled_recent": CustomerFactory(),  # 700 40 days ago; a cancelled order 5 days ago -> in
        "exactly_30": CustomerFactory(),  # 800 exactly 30 days ago -> out (not *more* than 30 days)
        "never": CustomerFactory(),  # no order -> out
        "already": CustomerFactory(),  # in, but tagged by hand already -> stays manual
    }
    make_order(at["edge_spent"], total="500.00", placed_at=NOW - timedelta(days=31))
    make_order(at["recent"], total="900.00", placed_at=NOW - timedelta(days=29))
    make_order(at["below"], total="499.99", placed_at=NOW - timedelta(days=40))
    refunded = make_order(at["refunded"], total="600.00", placed_at=NOW - timedelta(days=40))
    customer_services.refund_create(order=refunded, amount="150.00")
    make_order(at["cancelled_recent"], total="700.00", placed_at=NOW - timedelta(days=40))
    cancelled = make_order(at["cancelled_recent"], total="80.00", placed_at=NOW - timedelta(days=5))
    customer_services.order_cancel(order=cancelled)
    make_order(at["exactly_30"], total="800.00", placed_at=NOW - timedelta(days=30))
    make_order(at["already"], total="2000.00", placed_at=NOW - timedelta(days=90))
    tag_services.tags_add(customer=at["already"], names=["Lapsed VIP"], source="manual")
    return at


def test_run_now_tags_exactly_the_audience_through_the_api(frozen, api, user, worker):
    people = inactive_high_value_people()
    workflow = install("inactive_high_value", {"tag": "Lapsed VIP"}, user)

    response = worker(api.post, f"/api/v1/workflows/{workflow.pk}/run/")

    assert response.status_code == 202, response.content
    run = WorkflowRun.objects.get(pk=response.json()["id"])
    assert (run.kind, run.status, run.started_by) == ("bulk", "succeeded", user)
    tagged = {name for name, customer in people.items() if "Lapsed VIP" in tags(customer)}
    assert tagged == {"edge_spent", "cancelled_recent", "already"}
    assert set(
        CustomerTag.objects.filter(tag__name="Lapsed VIP").values_list("customer_id", "source", "source_ref")
    ) == {
        (people["edge_spent"].pk, "workflow", f"bulk_run:{run.pk}"),
        (people["cancelled_recent"].pk, "workflow", f"bulk_run:{run.pk}"),
        (people["already"].pk, "manual", ""),
    }
    assert run.progress["matched"] == 3
    assert run.progress["processed"] == 3
    assert run.progress["actions"] == {"s1": 2}  # the third one had the tag already
    assert run.progress["errors"] == 0
    assert response.json()["progress"]["chunks_total"] == 1


def test_run_now_is_refused_for_a_draft_or_an_event_workflow(frozen, api, user):
    draft = bulk_workflow_create("inactive_high_value", {}, user=user)
    event_workflow = install("first_time_buyer", {}, user)

    refused_draft = api.post(f"/api/v1/workflows/{draft.pk}/run/")
    refused_event = api.post(f"/api/v1/workflows/{event_workflow.pk}/run/")

    assert (refused_draft.status_code, refused_draft.json()["errors"][0]["path"]) == (400, "status")
    assert (refused_event.status_code, refused_event.json()["errors"][0]["path"]) == (400, "trigger")
    assert WorkflowRun.objects.count() == 0


def test_spend_tiers_branches_move_customers_between_tiers(frozen, user):
    high, edge_high, mid, edge_mid, low, none = (CustomerFactory() for _ in range(6))
    make_order(high, total="1500.00")
    make_order(edge_high, total="1000.00")
    make_order(mid, total="999.99")
    make_order(edge_mid, total="300.00")
    make_order(low, total="299.99")
    tag_services.tags_add(customer=high, names=["Low value"], source="workflow")  # from an earlier run
    workflow = install("spend_tiers", {"high_min": "1000", "mid_min": "300"}, user)

    run = process_all(bulk.bulk_run_start(workflow=workflow, user=user, enqueue=False))

    assert [tags(c) for c in (high, edge_high, mid, edge_mid, low, none)] == [
        {"High value"},
        {"High value"},
        {"Mid value"},
        {"Mid value"},
        {"Low value"},
        set(),
    ]
    assert run.progress["matched"] == 5  # the customer without orders is outside the audience
    assert run.progress["branches"] == {"s1": {"then": 2, "else": 3}, "s4": {"then": 2, "else": 1}}
    assert run.progress["actions"] == {"s2": 2, "s3": 1, "s5": 2, "s6": 0, "s7": 1, "s8": 0}


def test_chunks_run_in_parallel_and_a_redelivered_chunk_is_a_no_op(frozen, user, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 3)
    customers = CustomerFactory.create_batch(8)
    for customer in customers:
        make_order(customer, total="600.00", placed_at=NOW - timedelta(days=60))
    workflow = install("inactive_high_value", {}, user)
    run = bulk.bulk_run_start(workflow=workflow, user=user, enqueue=False)
    assert run.progress["chunks_total"] == 3

    bulk.bulk_chunk_process(run_id=run.pk, index=2)
    bulk.bulk_chunk_process(run_id=run.pk, index=0)
    run.refresh_from_db()
    assert (run.status, run.progress["chunks_done"], run.progress["matched"]) == ("running", 2, 5)

    bulk.bulk_chunk_process(run_id=run.pk, index=0)  # the worker died after commit: delivered again
    bulk.bulk_chunk_process(run_id=run.pk, index=1)
    run.refresh_from_db()

    assert (run.status, run.progress["chunks_done"], run.progress["matched"]) == ("succeeded", 3, 8)
    assert run.progress["actions"] == {"s1": 8}
    assert CustomerTag.objects.filter(tag__name="Inactive high-value customer").count() == 8


def _queries_for_chunk(user, count: int) -> int:
    tag_services.tags_get_or_create(names=["High value", "Mid value", "Low value"])
    for customer in CustomerFactory.create_batch(count):
        make_order(customer, total="1200.00", placed_at=NOW - timedelta(days=45))
    workflow = Workflow.objects.filter(name="Spend tiers").first() or install("spend_tiers", {}, user)
    run = bulk.bulk_run_start(workflow=workflow, user=user, enqueue=False)
    with CaptureQueriesContext(connection) as queries:
        bulk.bulk_chunk_process(run_id=run.pk, index=0)
    run.refresh_from_db()
    assert run.status == "succeeded"
    return len(queries)


def test_a_chunk_costs_the_same_queries_for_3_or_150_customers(frozen, user):
    small = _queries_for_chunk(user, 3)
    CustomerTag.objects.all().delete()
    large = _queries_for_chunk(user, 150)

    assert small == large


def test_a_schedule_slot_runs_once_even_with_two_clusters_ticking(frozen, user):
    people = inactive_high_value_people()
    workflow = install("inactive_high_value", {"tag": "Lapsed VIP", "schedule": "0 3 * * *"}, user)
    assert workflow.next_run_at == datetime(2026, 6, 16, 3, 0, tzinfo=UTC)

    frozen.move_to(datetime(2026, 6, 16, 2, 59, tzinfo=UTC))
    assert bulk.bulk_schedules_tick() == []
    frozen.move_to(datetime(2026, 6, 16, 3, 0, 30, tzinfo=UTC))
    first = bulk.bulk_schedules_tick()
    second = bulk.bulk_schedules_tick()  # another cluster, same minute

    assert len(first) == 1
    assert second == []
    run = WorkflowRun.objects.get(pk=first[0])
    assert run.slot == "cron:2026-06-16T03:00"
    workflow.refresh_from_db()
    assert workflow.next_run_at == datetime(2026, 6, 17, 3, 0, tzinfo=UTC)
    process_all(run)
    assert "Lapsed VIP" in tags(people["edge_spent"])


def test_the_same_slot_cannot_be_created_twice(frozen, user):
    workflow = install("inactive_high_value", {"schedule": "0 3 * * *"}, user)
    frozen.move_to(datetime(2026, 6, 16, 3, 0, tzinfo=UTC))
    bulk.bulk_schedules_tick()
    run = WorkflowRun.objects.get(workflow=workflow)
    process_all(run)
    # A restarted worker whose copy of the workflow still says the slot is due.
    Workflow.objects.filter(pk=workflow.pk).update(next_run_at=datetime(2026, 6, 16, 3, 0, tzinfo=UTC))

    assert bulk.bulk_schedules_tick() == []

    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1


def test_a_slot_due_while_the_previous_run_is_going_is_skipped_not_overlapped(frozen, user, api):
    workflow = install("inactive_high_value", {"schedule": "0 * * * *"}, user)
    CustomerFactory()
    frozen.move_to(datetime(2026, 6, 15, 13, 0, tzinfo=UTC))
    [first_id] = bulk.bulk_schedules_tick()  # its chunks are not processed yet: still running

    frozen.move_to(datetime(2026, 6, 15, 14, 0, tzinfo=UTC))
    assert bulk.bulk_schedules_tick() == []
    refused = api.post(f"/api/v1/workflows/{workflow.pk}/run/")

    assert refused.status_code == 409
    runs = list(WorkflowRun.objects.filter(workflow=workflow).order_by("pk").values_list("slot", "status"))
    assert runs == [("cron:2026-06-15T13:00", "running"), ("cron:2026-06-15T14:00", "skipped")]
    assert WorkflowRun.objects.get(pk=first_id).status == "running"


def test_missed_slots_are_not_replayed_in_a_burst(frozen, user):
    workflow = install("inactive_high_value", {"schedule": "0 3 * * *"}, user)
    # The scheduler was down for three days.
    frozen.move_to(datetime(2026, 6, 19, 9, 0, tzinfo=UTC))

    created = bulk.bulk_schedules_tick()
    again = bulk.bulk_schedules_tick()

    assert len(created) == 1
    assert again == []
    assert WorkflowRun.objects.get(pk=created[0]).slot == "cron:2026-06-19T03:00"
    workflow.refresh_from_db()
    assert workflow.next_run_at == datetime(2026, 6, 20, 3, 0, tzinfo=UTC)


def test_a_paused_workflow_does_not_run_on_schedule(frozen, user):
    workflow = install("inactive_high_value", {"schedule": "0 3 * * *"}, user)
    workflow_pause(workflow=workflow, user=user)
    frozen.move_to(datetime(2026, 6, 16, 3, 0, tzinfo=UTC))

    assert bulk.bulk_schedules_tick() == []
    assert WorkflowRun.objects.count() == 0


def test_run_workflow_command_with_wait_processes_the_run(frozen, user):
    from io import StringIO

    from django.core.management import call_command

    people = inactive_high_value_people()
    workflow = install("inactive_high_value", {"tag": "Lapsed VIP"}, user)
    out = StringIO()

    call_command("run_workflow", str(workflow.pk), "--wait", stdout=out)

    assert "succeeded: matched 3, processed 3, errors 0" in out.getvalue()
    assert "Lapsed VIP" in tags(people["cancelled_recent"])


def test_dynamic_tags_and_per_customer_actions_in_a_bulk_run(
    frozen, user, django_capture_on_commit_callbacks, settings
):
    from django.core import mail

    settings.TASKS_SYNC = True  # the e-mails' sending tasks run inline after the chunk commits

    from apps.automations.services import workflow_create

    people = [
        CustomerFactory(country="US", first_name="Ann", email="ann@example.com"),
        CustomerFactory(country="DE", first_name="Ben", email="ben@example.com"),
        CustomerFactory(country="US", first_name="Cid", email="cid@example.com", accepts_marketing=False),
    ]
    workflow = workflow_create(
        name="Country tags and hello",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.bulk_activity"},
            "steps": [
                {"id": "s1", "action": "customer.add_tags", "params": {"tags": ["From {{ customer.country }}"]}},
                {
                    "id": "s2",
                    "if": {"field": "customer.accepts_marketing", "op": "eq", "value": True},
                    "then": [
                        {
                            "id": "s3",
                            "action": "notify.email",
                            "params": {"subject": "Hi {{ customer.first_name }}", "body": "News."},
                        }
                    ],
                    "else": [],
                },
            ],
        },
        user=user,
    )
    workflow = workflow_activate(workflow=workflow, user=user)

    with django_capture_on_commit_callbacks(execute=True):
        run = process_all(bulk.bulk_run_start(workflow=workflow, user=user, enqueue=False))

    assert [tags(person) for person in people] == [{"From US"}, {"From DE"}, {"From US"}]
    assert set(CustomerTag.objects.values_list("source_ref", flat=True)) == {f"bulk_run:{run.pk}"}
    assert sorted((message.to[0], message.subject) for message in mail.outbox) == [
        ("ann@example.com", "Hi Ann"),
        ("ben@example.com", "Hi Ben"),
    ]
    assert run.progress["actions"] == {"s1": 3, "s3": 2}
    assert run.progress["branches"] == {"s2": {"then": 2, "else": 1}}


def test_a_failing_chunk_is_counted_and_the_other_chunks_still_run(frozen, user, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 2)
    for customer in CustomerFactory.create_batch(4):
        make_order(customer, total="600.00", placed_at=NOW - timedelta(days=60))
    workflow = install("inactive_high_value", {}, user)
    run = bulk.bulk_run_start(workflow=workflow, user=user, enqueue=False)
    real = tag_services.tags_add_bulk
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(tag_services, "tags_add_bulk", flaky)
    run = process_all(run)

    assert run.status == "failed"
    assert "disk full" in run.error
    assert (run.progress["errors"], run.progress["matched"], run.progress["chunks_done"]) == (1, 2, 2)
    assert "disk full" in run.progress["error_messages"][0]
    assert CustomerTag.objects.count() == 2  # the failed chunk wrote nothing


def test_admin_action_starts_a_run_and_progress_shows_in_admin_and_api(frozen, user, api, client):
    inactive_high_value_people()
    workflow = install("inactive_high_value", {"tag": "Lapsed VIP"}, user)
    client.force_login(user)

    response = client.post(
        "/admin/automations/workflow/",
        {"action": "admin_action_run_now", "_selected_action": [workflow.pk]},
        follow=True,
    )

    assert response.status_code == 200
    run = WorkflowRun.objects.get(workflow=workflow)
    assert f"run #{run.pk}" in response.content.decode()
    process_all(run)
    assert client.get(f"/admin/automations/workflowrun/{run.pk}/change/").status_code == 200
    body = api.get(f"/api/v1/workflow-runs/{run.pk}/").json()
    assert (body["kind"], body["status"], body["slot"]) == ("bulk", "succeeded", run.slot)
    assert (body["progress"]["matched"], body["progress"]["actions"]) == (3, {"s1": 2})


def test_chunks_whose_enqueue_was_lost_are_resumed_by_the_tick(frozen, user, worker, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 2)
    people = inactive_high_value_people()
    workflow = install("inactive_high_value", {"tag": "Lapsed VIP"}, user)
    run = bulk.bulk_run_start(workflow=workflow, user=user, enqueue=False)  # the process died before enqueuing
    bulk.bulk_chunk_process(run_id=run.pk, index=0)

    frozen.move_to(NOW + timedelta(minutes=5))
    assert worker(bulk.bulk_stalled_resume) == 0  # not stalled yet
    frozen.move_to(NOW + timedelta(minutes=11))
    resumed = worker(bulk.bulk_stalled_resume)

    run.refresh_from_db()
    assert resumed == run.progress["chunks_total"] - 1
    assert (run.status, run.progress["chunks_done"], run.progress["matched"]) == ("succeeded", resumed + 1, 3)
    assert {name for name, customer in people.items() if "Lapsed VIP" in tags(customer)} == {
        "edge_spent",
        "cancelled_recent",
        "already",
    }


def test_chunks_hold_the_same_number_of_customers_however_sparse_the_ids(frozen, user, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_SIZE", 2)
    for pk in (10, 11, 5_000, 90_000, 90_001):
        CustomerFactory(id=pk)

    assert bulk._chunk_bounds() == [(10, 5_000), (5_000, 90_001), (90_001, 90_002)]


def test_run_workflow_command_refuses_unknown_and_draft_workflows(frozen, user):
    from django.core.management import CommandError, call_command

    draft = bulk_workflow_create("inactive_high_value", {}, user=user)

    with pytest.raises(CommandError, match="No workflow #999999"):
        call_command("run_workflow", "999999")
    with pytest.raises(CommandError, match="Activate the workflow"):
        call_command("run_workflow", str(draft.pk))
    assert WorkflowRun.objects.count() == 0
