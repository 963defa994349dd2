"""
Sending a claimed batch: its outcomes are saved set-based (one UPDATE per SAVE_EVERY sends, whatever the batch
size), a sender stops taking rows well inside the task timeout and hands the rest to a new task, and a sender
that dies mid-batch leaves no message to be sent twice.
"""

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.customers.messaging import services
from apps.customers.messaging.models import Delivery
from apps.customers.models import Customer

pytestmark = pytest.mark.django_db


def queued_emails(count: int) -> list[int]:
    Customer.objects.bulk_create(
        [
            Customer(email=f"r{index}@example.com", first_name=f"R{index}", accepts_marketing=True)
            for index in range(count)
        ]
    )
    messages = [
        services.Message(
            key=f"batch:{customer.pk}", customer=customer, content=services.Content(subject="Hi", text="t")
        )
        for customer in Customer.objects.order_by("pk")
    ]
    ids = services.deliveries_queue_many(messages=messages, channel="email", purpose="marketing", cause="test")
    assert len(ids) == count
    return ids


class Clock:
    """A monotonic clock the test moves: the sender's `monotonic` reads it (the time module itself is untouched)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class SlowBackend(EmailBackend):
    """locmem, but every message takes `seconds` of the test's clock; `die_after` sends, the worker is killed."""

    clock: Clock
    seconds = 0.0
    die_after: int | None = None

    def send_messages(self, messages: Any) -> int:
        if self.die_after is not None and len(mail.outbox) >= self.die_after:
            raise SystemExit("killed")  # what the cluster's timeout does to a worker: not an Exception
        self.clock.now += self.seconds * len(messages)
        return super().send_messages(messages)


@pytest.fixture
def clock(monkeypatch, settings) -> Clock:
    clock = Clock()
    monkeypatch.setattr(services, "monotonic", clock)
    # set here, restored after the test: the tests change `seconds` and `die_after` directly
    monkeypatch.setattr(SlowBackend, "clock", clock, raising=False)
    monkeypatch.setattr(SlowBackend, "seconds", 0.0)
    monkeypatch.setattr(SlowBackend, "die_after", None)
    settings.EMAIL_BACKEND = "tests.messaging.test_send_batch.SlowBackend"
    return clock


def saved_states(ids: list[int]) -> Counter:
    """(status, attempts, claim token, not sent yet) -> how many rows."""
    rows = Delivery.objects.filter(pk__in=ids).values_list("status", "attempts", "claim_token", "sent_at")
    return Counter((status, attempts, token, sent_at is None) for status, attempts, token, sent_at in rows)


@pytest.mark.parametrize("count", [1, 20, 21, 60])
def test_sending_a_batch_costs_four_statements_and_one_update_per_save_every_sends(count, settings):
    # probe, claim, read the claimed rows, the brand's sender — then one UPDATE per SAVE_EVERY sends
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ids = queued_emails(count)
    saves = -(-count // services.SAVE_EVERY)

    with CaptureQueriesContext(connection) as captured:
        assert services.deliveries_send(ids=ids) == {"sent": count}

    assert len(captured) == 4 + saves
    assert [query["sql"].startswith("WITH") for query in captured.captured_queries[4:]] == [True] * saves
    rows = list(Delivery.objects.filter(pk__in=ids).order_by("pk"))
    assert [(row.status, row.reason, row.error, row.claim_token, row.claimed_at, row.attempts) for row in rows] == [
        ("sent", "", "", "", None, 1)
    ] * count
    assert all(row.sent_at is not None and row.sent_at >= row.created_at for row in rows)
    # each row keeps its own Message-ID, the one the recipient's copy carries
    assert [row.provider_message_id for row in rows] == [message.extra_headers["Message-ID"] for message in mail.outbox]
    assert len({row.provider_message_id for row in rows}) == count


def test_a_sender_out_of_time_releases_the_rest_to_a_new_task_and_nothing_is_sent_twice(clock, queue):
    # 30 e-mails of 10 s each against a 60 s budget (half the 120 s task timeout): six go out in this task
    SlowBackend.seconds = 10.0
    ids = queued_emails(30)

    assert services.send_budget() == 60.0
    assert services.deliveries_send(ids=ids) == {"sent": 6}

    assert len(mail.outbox) == 6
    assert saved_states(ids) == Counter({("sent", 1, "", False): 6, ("queued", 0, "", True): 24})
    assert queue.calls == [("apps.customers.messaging.tasks.deliveries_send_task", (ids[6:],))]

    SlowBackend.seconds = 0.0
    assert queue.drain() == 1
    assert sorted(Counter(message.to[0] for message in mail.outbox).values()) == [1] * 30
    assert saved_states(ids) == Counter({("sent", 1, "", False): 30})


def test_a_sender_out_of_time_before_its_next_batch_claims_nothing_more(clock, queue, monkeypatch):
    monkeypatch.setattr(services, "BATCH_SIZE", 5)
    SlowBackend.seconds = 12.0  # 5 x 12 s: the first batch of five ends exactly at the budget
    ids = queued_emails(12)

    assert services.deliveries_send(ids=ids) == {"sent": 5}

    assert saved_states(ids) == Counter({("sent", 1, "", False): 5, ("queued", 0, "", True): 7})
    assert queue.calls == [("apps.customers.messaging.tasks.deliveries_send_task", (ids[5:],))]


def test_a_sender_killed_mid_batch_records_what_it_sent_and_the_rest_goes_once_after_the_claim(clock, queue):
    SlowBackend.die_after = 25
    ids = queued_emails(40)
    start = timezone.now()
    with pytest.raises(SystemExit):
        services.deliveries_send(ids=ids, now=start)
    SlowBackend.die_after = None

    # the 25 sends are recorded (20 by the chunk's save, 5 on the way out); the rest stays claimed
    assert len(mail.outbox) == 25
    states = saved_states(ids)
    assert states[("sent", 1, "", False)] == 25
    assert sum(count for (status, _, token, _), count in states.items() if status == "queued" and token) == 15

    # a second delivery of the same task while the claim holds (the task timeout and more later) sends nothing
    assert services.deliveries_send(ids=ids, now=start + timedelta(seconds=services.task_timeout() + 1)) == {}
    # once the claim has expired, the periodic sweep sends the 15 — and none of the 25 again
    assert services.deliveries_due_send(now=start + services.claim_ttl() + timedelta(seconds=1)) == {"sent": 15}
    assert sorted(Counter(message.to[0] for message in mail.outbox).values()) == [1] * 40
    assert Delivery.objects.filter(pk__in=ids, status="sent").count() == 40


@pytest.mark.parametrize(("timeout", "ttl_minutes"), [(120, 10), (900, 30)])
def test_a_claim_outlives_the_task_that_holds_it(settings, timeout, ttl_minutes):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": timeout}
    assert services.claim_ttl() == timedelta(minutes=ttl_minutes)
    assert services.claim_ttl().total_seconds() > timeout > services.send_budget()
