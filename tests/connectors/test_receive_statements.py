"""
The statements of receiving one webhook (the shop waits on each round trip): pinned with the request's own
transaction as the outermost one (a transactional test), on SQLite and PostgreSQL alike.
"""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from apps.connectors.models import StoreConnection, WebhookDelivery
from tests.connectors.support import fixture, post_shopify

pytestmark = pytest.mark.django_db(transaction=True)


def tables(queries: CaptureQueriesContext) -> list[str]:
    """
    Each statement as its verb and table (SELECT connectors_storeconnection, INSERT django_q_ormq, ...), without
    the transaction's own BEGIN / COMMIT / ROLLBACK (SQLite's are captured, PostgreSQL's are not).
    """
    named = []
    for query in queries.captured_queries:
        sql = query["sql"]
        verb = sql.split()[0].upper()
        if verb in ("BEGIN", "COMMIT", "ROLLBACK"):
            continue
        table = sql.split('"')[1] if '"' in sql else ""
        named.append(f"{verb} {table}")
    return named


def test_an_accepted_webhook_costs_three_statements_and_one_commit(shop, client, settings):
    settings.TASKS_SYNC = False  # the ORM broker: the task's queue row is written in the request's commit
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False), CaptureQueriesContext(db) as first:
        assert post_shopify(client, shop, "orders/create", fixture("shopify", "orders/create")).json() == {
            "status": "accepted"
        }
    with time_machine.travel(start + timedelta(milliseconds=300), tick=False), CaptureQueriesContext(db) as burst:
        assert post_shopify(client, shop, "orders/create", fixture("shopify", "orders/create")).json() == {
            "status": "accepted"
        }

    # the first of a second also stamps the connection's last delivery
    assert tables(first) == [
        "SELECT connectors_storeconnection",
        "INSERT connectors_webhookdelivery",
        "UPDATE connectors_storeconnection",
        "INSERT django_q_ormq",
    ]
    # the rest of a burst: the connection, the delivery, its task — no savepoint, no write to the connection row
    assert tables(burst) == [
        "SELECT connectors_storeconnection",
        "INSERT connectors_webhookdelivery",
        "INSERT django_q_ormq",
    ]
    assert WebhookDelivery.objects.count() == 2 and OrmQ.objects.count() == 2
    assert StoreConnection.objects.get().last_delivery_at == start


def test_a_replayed_webhook_id_costs_two_statements_and_stores_nothing(shop, client, settings):
    settings.TASKS_SYNC = False
    body = fixture("shopify", "orders/create")
    post_shopify(client, shop, "orders/create", body, webhook_id="replayed")
    deliveries, queued = WebhookDelivery.objects.count(), OrmQ.objects.count()

    with CaptureQueriesContext(db) as replay:
        response = post_shopify(client, shop, "orders/create", body, webhook_id="replayed")

    assert (response.status_code, response.json()) == (200, {"status": "duplicate"})
    assert tables(replay) == ["SELECT connectors_storeconnection", "INSERT connectors_webhookdelivery"]
    assert (WebhookDelivery.objects.count(), OrmQ.objects.count()) == (deliveries, queued)


@pytest.mark.postgres
def test_a_delivery_is_processed_while_another_worker_holds_its_connection_row(shop, client, settings):
    """A worker's transaction on the same shop (its deliveries_count) must not make another worker skip."""
    import threading

    from django.db import connections, transaction

    from apps.connectors.services.deliveries import delivery_process

    settings.TASKS_SYNC = False
    post_shopify(client, shop, "orders/create", fixture("shopify", "orders/create"))
    delivery = WebhookDelivery.objects.get()
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                StoreConnection.objects.select_for_update().get(pk=shop.pk)
                locked.set()
                # Held until the processing worker, past its delivery lock, waits on this row (its counter
                # update at the end), or until the test is over.
                with connections["default"].cursor() as cursor:
                    while not release.wait(timeout=0.05):
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND datname = current_database()"
                        )
                        if cursor.fetchone()[0]:
                            break
        finally:
            connections.close_all()

    holder = threading.Thread(target=other_worker)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        status = delivery_process(delivery_id=delivery.pk)
    finally:
        release.set()
        holder.join()

    assert status == "processed"  # None: skipped because of the connection row's lock (the bug)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("processed", 1)


def test_a_lost_database_connection_is_retried_once_then_answered_503_never_500(shop, client, settings, monkeypatch):
    from django.db import OperationalError

    settings.TASKS_SYNC = False
    manager = WebhookDelivery.objects
    create = manager.create
    failures = {"left": 1}

    def flaky_create(**fields):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return create(**fields)

    monkeypatch.setattr(manager, "create", flaky_create)

    once = post_shopify(client, shop, "orders/create", fixture("shopify", "orders/create"), webhook_id="lost-once")
    assert (once.status_code, once.json()) == (200, {"status": "accepted"})  # tried again on a fresh connection
    assert list(WebhookDelivery.objects.values_list("webhook_id", flat=True)) == ["lost-once"]
    assert OrmQ.objects.count() == 1

    failures["left"] = 2  # lost twice: the shop is asked to send it again later
    twice = post_shopify(client, shop, "orders/create", fixture("shopify", "orders/create"), webhook_id="lost-twice")
    assert twice.status_code == 503 and twice["Retry-After"] == "5"
    assert twice.json() == {
        "error": "unavailable",
        "message": "The database is unavailable for a moment; send it again later.",
    }
    assert WebhookDelivery.objects.count() == 1 and OrmQ.objects.count() == 1
