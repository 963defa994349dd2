"""
The scale-out path for real: events enqueued on the Redis broker are drained by two `manage.py qcluster`
processes (pooled connections) on the same PostgreSQL database (the test database), each effect exactly
once; /healthz sees the Redis broker and the cluster's schedule ticks.

Runs when REDIS_URL is set (CI: once, with a Redis database number of its own) on PostgreSQL.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from apps.automations.models import WorkflowRun
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent
from apps.tagging.models import CustomerTag
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 60
DRAIN_LIMIT_SECONDS = 180


def qcluster(database_url: str) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    # The workers use Django's psycopg pool, as a production worker may (conn_max_age forced to 0).
    env.update(
        DATABASE_URL=database_url,
        DATABASE_POOL_MAX_SIZE="3",
        DJANGO_SETTINGS_MODULE="loyalty_site.settings.test",
        Q_WORKERS="2",
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


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
        customer_services.customer_activate(customer=customer)  # commits: the receiver enqueues on Redis
    assert broker.queue_size() == CUSTOMERS

    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    workers = [qcluster(database_url), qcluster(database_url)]
    try:
        deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
        while DomainEvent.objects.filter(name="customer.activated", status="pending").exists():
            assert all(worker.poll() is None for worker in workers), workers[0].stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the qclusters did not drain the queue"
            time.sleep(0.5)
        health = client.get("/healthz").json()
    finally:
        for worker in workers:
            stop(worker)

    assert WorkflowRun.objects.filter(status="succeeded").count() == CUSTOMERS
    assert CustomerTag.objects.filter(tag__name="Activated").count() == CUSTOMERS
    assert CustomerTag.objects.filter(tag__name="Seen").count() == CUSTOMERS
    assert broker.queue_size() == 0
    assert health["checks"]["broker"] == {"status": "ok", "kind": "redis", "queued": 0}
    assert health["checks"]["outbox"] == {"status": "ok", "lag_seconds": 0}
    assert health["checks"]["worker"]["status"] == "ok"
