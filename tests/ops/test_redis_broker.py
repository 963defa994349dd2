"""
The scale-out path for real: events handed to the Redis broker (one engine drain while none is queued) are
drained by two `manage.py qcluster` processes (pooled connections) on the same PostgreSQL database (the test
database), each effect exactly once; /healthz sees the Redis broker and the cluster's schedule ticks.

Runs when REDIS_URL is set (CI: once, with a Redis database number of its own) on PostgreSQL.
"""

import os

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.automations.models import WorkflowRun
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent
from apps.tagging.models import CustomerTag
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory
from tests.qcluster import database_url, qcluster_start, qcluster_stop, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 60
DRAIN_LIMIT_SECONDS = 180


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a Redis server)")
def test_two_qclusters_on_redis_drain_the_outbox_with_each_effect_once(client):
    from django_q.brokers import get_broker

    assert settings.Q_CLUSTER["redis"] == os.environ["REDIS_URL"]
    broker = get_broker()
    broker.purge_queue()
    call_command("setup_schedules", stdout=None)
    active_workflow("redis", "customer.activated", [add_tags("Activated"), add_tags("Seen")])
    customers = CustomerFactory.create_batch(CUSTOMERS)
    for customer in customers:
        customer_services.customer_activate(customer=customer)  # commits: the outbox sends on Redis
    # one engine drain, sent after the first commit; the others found it queued (was one task per event)
    assert broker.queue_size() == 1

    # The workers use Django's psycopg pool, as a production worker may (conn_max_age forced to 0).
    workers = [qcluster_start(database_url(), DATABASE_POOL_MAX_SIZE="3") for _ in range(2)]
    try:
        wait_until(
            lambda: not DomainEvent.objects.filter(name="customer.activated", status="pending").exists(),
            what="the qclusters draining the queue",
            workers=workers,
            limit=DRAIN_LIMIT_SECONDS,
        )
        health = client.get("/healthz").json()
    finally:
        for worker in workers:
            qcluster_stop(worker)

    assert WorkflowRun.objects.filter(status="succeeded").count() == CUSTOMERS
    assert CustomerTag.objects.filter(tag__name="Activated").count() == CUSTOMERS
    assert CustomerTag.objects.filter(tag__name="Seen").count() == CUSTOMERS
    assert broker.queue_size() == 0
    assert health["checks"]["broker"] == {"status": "ok", "kind": "redis", "queued": 0}
    assert health["checks"]["outbox"] == {"status": "ok", "lag_seconds": 0}
    assert health["checks"]["worker"]["status"] == "ok"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a Redis server)")
def test_many_tasks_of_one_commit_reach_redis_in_one_push_as_a_worker_reads_them():
    from django.db import transaction
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    from loyalty_site.lib import tasks as task_queue

    broker = get_broker()
    broker.purge_queue()
    with transaction.atomic():
        task_queue.enqueue_many_on_commit("apps.automations.tasks.run_execute", [(11,), (12,), (13,)])
        assert broker.queue_size() == 0  # not before the commit

    assert broker.queue_size() == 3
    pulled = [SignedPackage.loads(broker.dequeue()[0][1]) for _ in range(3)]  # as the cluster's pusher reads them
    assert [(task["func"], task["args"]) for task in pulled] == [
        ("apps.automations.tasks.run_execute", (11,)),
        ("apps.automations.tasks.run_execute", (12,)),
        ("apps.automations.tasks.run_execute", (13,)),
    ]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a Redis server)")
def test_the_outbox_sends_one_drain_per_consumer_after_the_commit_while_none_is_queued():
    from django.db import transaction
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    from apps.customers.models import OutboxDrain
    from loyalty_site.lib import tasks as task_queue

    broker = get_broker()
    broker.purge_queue()
    # the engine's per-event task is coalesced into its drain (PostgreSQL, batches on)
    with transaction.atomic():
        task_queue.enqueue_many_on_commit("apps.automations.tasks.process_domain_event", [(11,), (12,)])
        task_queue.enqueue_on_commit("apps.automations.tasks.process_domain_event", 13)
        assert broker.queue_size() == 0  # not before the commit
    assert broker.queue_size() == 1
    task_queue.enqueue_on_commit("apps.automations.tasks.process_domain_event", 14)  # a drain is queued: nothing
    assert broker.queue_size() == 1
    pulled = SignedPackage.loads(broker.dequeue()[0][1])
    assert (pulled["func"], pulled["args"]) == ("apps.automations.tasks.events_drain", ())
    assert list(OutboxDrain.objects.values_list("consumer", flat=True)) == ["automations"]
