"""A bulk run e-mails its audience: rows queued set-based, sent by parallel tasks to a real SMTP server."""

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.automations import bulk
from apps.automations.services import workflow_activate, workflow_create
from apps.customers.messaging.models import Delivery, SendingPolicy
from apps.customers.models import Customer
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=False)

N = 10_000


def customers(count: int) -> list[int]:
    Customer.objects.bulk_create(
        [Customer(email=f"c{index}@example.com", first_name=f"C{index}") for index in range(count)], batch_size=2_000
    )
    return list(Customer.objects.order_by("pk").values_list("pk", flat=True))


def newsletter():
    user = UserFactory()
    workflow = workflow_create(
        name="Newsletter",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.bulk_activity"},
            "steps": [
                {
                    "id": "n",
                    "action": "notify.email",
                    "params": {"subject": "Hi {{ customer.first_name }}", "body": "News"},
                }
            ],
        },
        user=user,
    )
    return workflow_activate(workflow=workflow, user=user), user


def test_a_bulk_run_of_10000_emails_delivers_each_exactly_once_even_when_tasks_run_again(queue, smtp_sink):
    customers(N)
    workflow, user = newsletter()

    run = bulk.bulk_run_start(workflow=workflow, user=user)
    chunk_tasks = list(queue.calls)
    queue.drain(limit=len(chunk_tasks))  # the chunks: rows queued, sending tasks enqueued
    send_tasks = list(queue.calls)
    assert {name for name, _ in send_tasks} == {"apps.customers.messaging.tasks.deliveries_send_task"}
    assert len(send_tasks) == N // 500
    assert Delivery.objects.filter(status="queued").count() == N
    queue.drain(limit=len(send_tasks))

    # every task is delivered a second time (a worker died before acknowledging it)
    queue.calls = chunk_tasks + send_tasks
    queue.drain(limit=len(chunk_tasks) + len(send_tasks))

    assert queue.calls == []
    recipients = Counter(smtp_sink.recipients())
    assert len(recipients) == N
    assert set(recipients.values()) == {1}
    assert Delivery.objects.filter(status="sent", cause=f"bulk_run:{run.pk}", attempts=1).count() == N
    assert Delivery.objects.count() == N
    # one SMTP session per sending task of 500, not one per message
    assert smtp_sink.sessions == N // 500
    run.refresh_from_db()
    assert (run.status, run.progress["actions"]) == ("succeeded", {"n": N})


def test_queueing_a_chunk_is_set_based(queue, smtp_sink):
    """The chunk's queries do not grow with its customers (no query per customer)."""

    SendingPolicy.current()  # the policy row exists (its first use creates it)

    def chunk_queries(count: int) -> int:
        Customer.objects.all().delete()
        customers(count)
        workflow, user = newsletter()
        run = bulk.bulk_run_start(workflow=workflow, user=user)
        queue.calls.clear()
        with CaptureQueriesContext(connection) as captured:
            bulk.bulk_chunk_process(run_id=run.pk, index=0)
        queue.calls.clear()
        assert Delivery.objects.filter(status="queued").count() == count
        # INSERTs are batched (on SQLite by its bound-parameter limit); no other query repeats per customer
        return len([query for query in captured.captured_queries if not query["sql"].startswith("INSERT")])

    assert chunk_queries(50) == chunk_queries(400)
