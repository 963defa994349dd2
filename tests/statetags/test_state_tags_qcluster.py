"""
State tags, preferred currency and account states through the REST API with a real worker: one
`manage.py qcluster` process for the module (`tests/qcluster.py`), on the ORM broker and the test database
(PostgreSQL), drains what the API calls enqueue — the activation's recomputation, the outbox events, the
re-evaluations and the runs — and the tests poll (bounded) for the outcome. Nothing here runs the worker in
the test process, with one exception: the window slide. A frozen clock cannot reach across processes, so the
scheduled time pass is invoked here the way the qcluster's schedule calls it (the function of its
`setup_schedules` entry) with the clock moved; the tags it takes off are announced (set-based, for the outbox
sweep, run here with the time of a minute after the pass), and the workflow on `customer.tag_removed` that
follows is run by the worker.

The same paths with the worker inline (sync mode, frozen clock) are in the other modules of this package.
"""

import os
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Failure, OrmQ

from apps.automations.management.commands.setup_schedules import periodic_jobs
from apps.automations.models import Workflow, WorkflowRun
from apps.customers.models import Customer, DomainEvent
from apps.customers.outbox import OUTBOX_GRACE, outbox_sweep
from apps.tagging.models import TagAudit
from tests.factories import UserFactory
from tests.integrator import Feed, feed_for, tagged_with, tags
from tests.qcluster import Qcluster, database_url, qcluster_start, qcluster_stop, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    # The ORM broker's path; with REDIS_URL the scale-out tests (tests/ops/test_redis_broker.py) run instead.
    pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="runs on the ORM broker (REDIS_URL is set)"),
]

HOT = {"tag": "Hot", "min_orders": 2, "min_spent": "500", "days": 30}
TIME_PASS = "automations: state tags time pass"


@pytest.fixture(scope="module")
def worker(django_db_setup):
    cluster = qcluster_start(database_url())
    yield cluster
    qcluster_stop(cluster)


@pytest.fixture
def feed(worker, transactional_db):
    yield feed_for(UserFactory())
    # Whatever a test left queued runs before the database is flushed under it.
    wait_until(idle, what="the worker to finish before the flush", workers=[worker])


def idle() -> bool:
    """Nothing left to do: no task queued or running (a task's row goes once done) and no pending event."""
    return not OrmQ.objects.exists() and not DomainEvent.objects.filter(status="pending").exists()


def settle(worker: Qcluster) -> None:
    """Wait until the worker has done everything the calls so far led to, and check that all of it succeeded."""
    wait_until(idle, what="the worker to drain the queue and the outbox", workers=[worker])
    assert list(Failure.objects.values_list("func", "result")) == []
    assert list(WorkflowRun.objects.exclude(status__in=("succeeded", "skipped")).values_list("status", flat=True)) == []


def audit(customer: Customer) -> list[tuple[str, str, str]]:
    rows = TagAudit.objects.filter(customer=customer).order_by("pk")
    return list(rows.values_list("tag_name", "action", "source"))


def events(name: str) -> list[int]:
    return list(DomainEvent.objects.filter(name=name).order_by("pk").values_list("customer_id", flat=True))


def event_workflow(feed: Feed, name: str, trigger: dict, tag: str) -> dict:
    definition = {
        "schema": 1,
        "trigger": trigger,
        "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": [tag]}}],
    }
    created = feed.post("/api/v1/workflows/", {"name": name, "definition": definition}, expect=201)
    feed.post(f"/api/v1/workflows/{created['id']}/activate/")
    return created


def test_exclusive_tiers_switch_on_the_order_that_crosses_a_threshold(worker, feed):
    feed.install("spend_tiers", {"high_min": "800", "mid_min": "200"})
    settle(worker)  # the activation's recomputation ran in the worker
    dee = feed.customer("c-dee")

    feed.order(dee, "150.00")
    seen = wait_until(
        lambda: tags(dee), lambda carried: carried == {"Low value"}, what="the low tier", workers=[worker]
    )
    feed.order(dee, "100.00")  # 250: crosses the mid threshold
    seen += wait_until(
        lambda: tags(dee), lambda carried: carried == {"Mid value"}, what="the mid tier", workers=[worker]
    )
    feed.order(dee, "600.00")  # 850: crosses the high threshold
    seen += wait_until(
        lambda: tags(dee), lambda carried: carried == {"High value"}, what="the high tier", workers=[worker]
    )
    settle(worker)

    first = next(index for index, carried in enumerate(seen) if carried)
    assert all(len(carried) == 1 for carried in seen[first:]), seen  # never none, never two once tiered
    assert audit(dee) == [
        ("Low value", "added", "workflow"),
        ("Low value", "removed", "workflow"),
        ("Mid value", "added", "workflow"),
        ("Mid value", "removed", "workflow"),
        ("High value", "added", "workflow"),
    ]
    removed = DomainEvent.objects.filter(name="customer.tag_removed", customer=dee).order_by("pk")
    assert [event.payload["tag"] for event in removed] == ["Low value", "Mid value"]
    tiers = dict(Workflow.objects.filter(template="spend_tiers").values_list("definition__state__tag", "pk"))
    assert [event.payload["source_ref"] for event in removed] == [
        f"state_tag:{tiers['Low value']}",
        f"state_tag:{tiers['Mid value']}",
    ]


def test_a_cancellation_and_a_refund_take_the_active_high_value_tag_off(worker, feed):
    feed.install("active_high_value", HOT)
    settle(worker)
    now = timezone.now()
    ana, bo = feed.customer("c-ana"), feed.customer("c-bo")
    feed.order(ana, "300.00", placed_at=now - timedelta(days=5))
    feed.order(bo, "300.00", placed_at=now - timedelta(days=5))
    ana_second, bo_second = feed.order(ana, "250.00"), feed.order(bo, "250.00")
    wait_until(lambda: tagged_with("Hot"), lambda hot: hot == {"c-ana", "c-bo"}, what="both tagged", workers=[worker])

    feed.cancel(ana_second)
    wait_until(lambda: tagged_with("Hot"), lambda hot: hot == {"c-bo"}, what="ana's tag off", workers=[worker])
    feed.refund(bo_second, "60.00")  # 490.00 net in the window: under the line
    wait_until(lambda: tagged_with("Hot"), lambda hot: hot == set(), what="bo's tag off", workers=[worker])
    settle(worker)

    for customer in (ana, bo):
        assert audit(customer) == [("Hot", "added", "workflow"), ("Hot", "removed", "workflow")]
    assert sorted(events("customer.tag_removed")) == sorted([ana.pk, bo.pk])


def test_the_preferred_currency_tag_follows_the_majority_one_at_a_time(worker, feed):
    feed.install("currency")
    settle(worker)
    now = timezone.now()
    eve = feed.customer("c-eve")

    feed.order(eve, "10.00", currency="EUR", placed_at=now - timedelta(days=4))
    feed.order(eve, "10.00", currency="EUR", placed_at=now - timedelta(days=3))
    seen = wait_until(
        lambda: tags(eve), lambda carried: carried == {"Pays in EUR"}, what="the EUR tag", workers=[worker]
    )
    feed.order(eve, "10.00", currency="USD", placed_at=now - timedelta(days=6))
    feed.order(eve, "10.00", currency="USD", placed_at=now - timedelta(days=7))  # 2 each: the latest is in EUR
    settle(worker)
    assert tags(eve) == {"Pays in EUR"}
    feed.order(eve, "10.00", currency="USD", placed_at=now - timedelta(days=8))  # 3 USD to 2 EUR
    seen += wait_until(
        lambda: tags(eve), lambda carried: carried == {"Pays in USD"}, what="the USD tag", workers=[worker]
    )
    settle(worker)

    first = next(index for index, carried in enumerate(seen) if carried)
    assert all(len(carried) == 1 for carried in seen[first:]), seen  # one currency tag at a time
    assert Customer.objects.get(pk=eve.pk).preferred_currency == "USD"
    assert audit(eve) == [
        ("Pays in EUR", "added", "workflow"),
        ("Pays in EUR", "removed", "workflow"),
        ("Pays in USD", "added", "workflow"),
    ]


def test_guests_are_never_tagged_registered_and_activation_fires_customer_activated_once(worker, feed):
    feed.install("registered", {"tag": "Member"})
    welcome = event_workflow(feed, "Welcome", {"event": "customer.activated"}, "Activated")
    member = feed.customer("c-member", email="m@example.com")
    guest = feed.customer("c-guest", email="g@example.com", state="guest")
    feed.order(guest, "20.00")
    embedded = feed.post(
        "/api/v1/orders/",
        {
            "customer": {"external_id": "c-guest-2", "state": "guest"},
            "currency": "USD",
            "lines": [{"title": "Item", "quantity": 1, "unit_price": "5.00"}],
        },
    )
    wait_until(
        lambda: tagged_with("Member"), lambda members: "c-member" in members, what="the member", workers=[worker]
    )
    settle(worker)  # everything the guests' writes led to has run too

    assert tagged_with("Member") == {"c-member"}
    members = TagAudit.objects.filter(tag_name="Member")
    assert list(members.values_list("customer__external_id", "action")) == [("c-member", "added")]  # not even briefly
    assert events("customer.registered") == [member.pk]
    assert Customer.objects.get(pk=embedded["customer_id"]).state == "guest"

    answer = feed.post(f"/api/v1/customers/{guest.pk}/activate/")
    feed.post(f"/api/v1/customers/{guest.pk}/activate/")  # already registered: nothing fires
    wait_until(lambda: tagged_with("Activated"), what="the workflow on customer.activated", workers=[worker])
    settle(worker)

    assert answer["state"] == "registered"
    assert events("customer.activated") == [guest.pk]
    runs = WorkflowRun.objects.filter(workflow_id=welcome["id"])
    assert list(runs.values_list("customer_id", "status")) == [(guest.pk, "succeeded")]
    assert tagged_with("Activated") == {"c-guest"}
    # Registered now (no longer a guest): the guest registering is also `customer.registered`.
    assert events("customer.registered") == [member.pk, guest.pk]
    assert tagged_with("Member") == {"c-member", "c-guest"}


def test_the_window_slides_past_the_orders_and_the_scheduled_time_pass_takes_the_tag_off(worker, feed):
    workflow = feed.install("active_high_value", HOT)
    where = {"field": "tag.name", "op": "eq", "value": "Hot"}
    event_workflow(feed, "Cooled down", {"event": "customer.tag_removed", "where": where}, "Cooled down")
    settle(worker)
    now = timezone.now()
    cy, fresh = feed.customer("c-cy"), feed.customer("c-fresh")
    feed.order(cy, "300.00", placed_at=now - timedelta(days=20))
    feed.order(cy, "300.00", placed_at=now - timedelta(days=1))
    feed.order(fresh, "300.00", placed_at=now - timedelta(days=2))
    feed.order(fresh, "300.00")
    wait_until(lambda: tagged_with("Hot"), lambda hot: hot == {"c-cy", "c-fresh"}, what="both hot", workers=[worker])
    settle(worker)
    (job,) = [job for job in periodic_jobs() if job["name"] == TIME_PASS]
    time_pass = import_string(job["func"])

    with time_machine.travel(now + timedelta(days=9, hours=23), tick=False):  # the 20-day-old order is inside
        time_pass()
    settle(worker)
    assert tagged_with("Hot") == {"c-cy", "c-fresh"}
    with time_machine.travel(now + timedelta(days=10, hours=1), tick=False):  # ... and now it has left
        time_pass()
    assert tagged_with("Hot") == {"c-fresh"}
    # The pass writes set-based, as bulk runs do: its `customer.tag_removed` events wait for the outbox sweep
    # (every minute, for events pending past a minute's grace) — the sweep of a minute after the pass.
    assert outbox_sweep(now=now + timedelta(days=10, hours=1) + OUTBOX_GRACE + timedelta(seconds=1)) == 1
    wait_until(lambda: tagged_with("Cooled down"), what="the workflow on customer.tag_removed", workers=[worker])
    settle(worker)
    assert tagged_with("Cooled down") == {"c-cy"}
    removal = TagAudit.objects.get(action="removed", tag_name="Hot")
    assert (removal.customer_id, removal.source_ref) == (cy.pk, f"state_tag:{workflow['id']}")
    assert Workflow.objects.get(pk=workflow["id"]).state_checked_at == now + timedelta(days=10, hours=1)
