"""
A delivery that waited (delayed by quiet hours, retried, orphaned) is decided again when it is sent: consent,
the suppression list, the frequency caps and the quiet hours as they stand at send time (frozen clock).
"""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail

from apps.customers.consent import services as consent
from apps.customers.messaging import services
from apps.customers.messaging.models import Delivery, SendingPolicy
from apps.customers.messaging.services import Content
from tests.factories import CustomerFactory
from tests.threads import run_together

pytestmark = pytest.mark.django_db

NEW_YORK = "America/New_York"
SATURDAY_2230 = datetime(2026, 6, 7, 2, 30, tzinfo=UTC)  # Sat Jun 6 22:30 EDT
SUNDAY_0800 = datetime(2026, 6, 7, 12, 0, tzinfo=UTC)  # Sun Jun 7 08:00 EDT: the quiet hours end


def policy(**fields) -> SendingPolicy:
    row = SendingPolicy.current()
    for name, value in {"quiet_hours_start": time(21, 0), "quiet_hours_end": time(8, 0), **fields}.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


def send(customer, key, *, at, channel="email", purpose="marketing"):
    with time_machine.travel(at, tick=False):
        return services.message_send(
            key=key,
            channel=channel,
            purpose=purpose,
            customer=customer,
            content=Content(subject=key, text=key),
            cause=f"campaign:{key}",
        )


def due_send(at) -> dict[str, int]:
    with time_machine.travel(at, tick=False):
        return services.deliveries_due_send()


def state(delivery) -> tuple:
    delivery.refresh_from_db()
    return delivery.status, delivery.reason, delivery.attempts, delivery.send_after


def sms_customer(**fields):
    customer = CustomerFactory(time_zone=NEW_YORK, phone="+15551234567", **fields)
    consent.consent_grant(customer=customer, channel="sms", source="admin")
    return customer


def test_a_delayed_sms_to_a_customer_who_unsubscribed_overnight_is_suppressed_unsubscribed(tmp_path, settings):
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    policy(quiet_hours_sms=True)
    customer = sms_customer()
    delayed = send(customer, "promo", at=SATURDAY_2230, channel="sms")
    assert state(delayed) == ("queued", "quiet_hours", 0, SUNDAY_0800)

    with time_machine.travel(SATURDAY_2230 + timedelta(hours=1), tick=False):
        consent.consent_withdraw(customer=customer, channel="sms", source="unsubscribe_link")

    assert due_send(SUNDAY_0800 + timedelta(seconds=30)) == {"suppressed": 1}
    assert state(delayed) == ("suppressed", "unsubscribed", 0, None)
    assert not (tmp_path / "sms.jsonl").exists()  # nothing reached the SMS provider
    assert due_send(SUNDAY_0800 + timedelta(minutes=5)) == {}  # and it is never tried again


def test_a_delayed_email_to_an_address_suppressed_overnight_is_suppressed_with_that_reason():
    policy(quiet_hours_email=True)
    customer = CustomerFactory(time_zone=NEW_YORK, email="ana@example.com", accepts_marketing=True)
    delayed = send(customer, "promo", at=SATURDAY_2230)
    assert state(delayed)[:2] == ("queued", "quiet_hours")

    consent.suppression_add(address="ANA@example.com", channel="email", reason="complaint", source="test")

    assert due_send(SUNDAY_0800) == {"suppressed": 1}
    assert state(delayed) == ("suppressed", "suppressed", 0, None)
    assert mail.outbox == []


def test_two_sms_delayed_to_the_same_morning_with_a_cap_of_one_a_day_send_one_and_suppress_the_other():
    # At 22:30 and 23:00 on Saturday both are within Saturday's cap (each would reach the customer on Sunday);
    # at 08:00 on Sunday the first one fills Sunday's only place.
    policy(quiet_hours_sms=True, sms_per_day=1)
    customer = sms_customer()
    first = send(customer, "first", at=SATURDAY_2230, channel="sms")
    second = send(customer, "second", at=SATURDAY_2230 + timedelta(minutes=30), channel="sms")
    assert [state(first)[:2], state(second)[:2]] == [("queued", "quiet_hours"), ("queued", "quiet_hours")]

    assert due_send(SUNDAY_0800) == {"sent": 1, "suppressed": 1}
    assert state(first)[:3] == ("sent", "", 1)
    assert state(second) == ("suppressed", "frequency_cap", 0, None)


def test_a_delayed_sms_is_suppressed_when_the_marketer_lowered_the_cap_and_an_email_filled_it_meanwhile():
    # E-mail is not delayed by quiet hours: a campaign e-mail at 07:30 on Sunday fits under a cap of two a day
    # beside the SMS due at 08:00; then the marketer lowers the cap to one, and the e-mail holds that place.
    policy(quiet_hours_sms=True, any_per_day=2)
    customer = sms_customer(accepts_marketing=True)
    delayed = send(customer, "night sms", at=SATURDAY_2230, channel="sms")
    receipt = send(customer, "receipt", at=SUNDAY_0800 - timedelta(hours=2), purpose="transactional")
    morning = send(customer, "morning mail", at=SUNDAY_0800 - timedelta(minutes=30))
    assert [receipt.status, morning.status] == ["sent", "sent"]

    policy(quiet_hours_sms=True, any_per_day=1)

    assert due_send(SUNDAY_0800) == {"suppressed": 1}
    assert state(delayed) == ("suppressed", "frequency_cap", 0, None)
    assert [message.subject for message in mail.outbox] == ["receipt", "morning mail"]


def test_a_message_delayed_overnight_counts_on_the_day_it_reaches_the_customer():
    policy(quiet_hours_sms=True, any_per_day=1)
    customer = sms_customer(accepts_marketing=True)
    delayed = send(customer, "night sms", at=SATURDAY_2230, channel="sms")
    assert due_send(SUNDAY_0800) == {"sent": 1}

    # Sunday's place is taken (the SMS reached the customer on Sunday, although it was written on Saturday)
    later_sunday = send(customer, "sunday mail", at=SUNDAY_0800 + timedelta(hours=2))

    assert state(delayed)[:2] == ("sent", "")
    assert (later_sunday.status, later_sunday.reason) == ("suppressed", "frequency_cap")


def test_a_message_still_delayed_holds_the_place_of_the_day_it_is_due():
    policy(quiet_hours_sms=True, any_per_day=1)
    customer = sms_customer(accepts_marketing=True)
    send(customer, "night sms", at=SATURDAY_2230, channel="sms")  # due Sunday 08:00

    early_sunday = send(customer, "early mail", at=SUNDAY_0800 - timedelta(hours=1))

    assert (early_sunday.status, early_sunday.reason) == ("suppressed", "frequency_cap")


def test_a_retry_that_falls_into_the_quiet_hours_is_delayed_again_and_not_counted_as_an_attempt(smtp_sink):
    policy(quiet_hours_email=True)
    customer = CustomerFactory(time_zone=NEW_YORK, accepts_marketing=True)
    before_quiet = datetime(2026, 6, 7, 0, 59, 50, tzinfo=UTC)  # Sat 20:59:50 EDT
    smtp_sink.replies = ["421 Try again later"]
    delivery = send(customer, "promo", at=before_quiet)
    assert state(delivery) == ("queued", "", 1, before_quiet + timedelta(seconds=30))

    assert due_send(before_quiet + timedelta(seconds=31)) == {"queued": 1}  # 21:00:21: quiet now
    assert state(delivery) == ("queued", "quiet_hours", 1, SUNDAY_0800)
    assert smtp_sink.messages == []

    assert due_send(SUNDAY_0800) == {"sent": 1}
    assert state(delivery)[:3] == ("sent", "", 2)
    assert len(smtp_sink.messages) == 1


def test_a_transactional_retry_to_an_address_that_bounced_meanwhile_is_suppressed(smtp_sink):
    customer = CustomerFactory(email="bob@example.com")
    start = datetime(2026, 6, 7, 15, 0, tzinfo=UTC)
    smtp_sink.replies = ["451 Busy"]
    receipt = send(customer, "receipt", at=start, purpose="transactional")
    assert state(receipt)[:3] == ("queued", "", 1)

    consent.suppress("bob@example.com", channel="email", reason="hard_bounce")

    assert due_send(start + timedelta(minutes=1)) == {"suppressed": 1}
    assert state(receipt) == ("suppressed", "suppressed", 1, None)  # the one real attempt
    assert smtp_sink.messages == []


def test_an_orphaned_due_row_is_rechecked_before_the_sweep_sends_it():
    customer = CustomerFactory(accepts_marketing=True)
    start = datetime(2026, 6, 7, 15, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        orphan = services.delivery_queue(
            key="lost-task",
            channel="email",
            purpose="marketing",
            customer=customer,
            content=Content(subject="s", text="t"),
        )
    assert state(orphan)[:2] == ("queued", "")
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        consent.consent_withdraw(customer=customer, channel="email", source="admin")

    assert due_send(start + timedelta(minutes=6)) == {"suppressed": 1}
    assert state(orphan) == ("suppressed", "unsubscribed", 0, None)


def test_rows_sent_right_away_are_not_rechecked(django_assert_num_queries):
    """A fresh row (decided milliseconds ago) costs no re-check: claim probe, UPDATE, SELECT, the brand's sender
    (read once per sending batch), save."""
    customer = CustomerFactory(accepts_marketing=True)
    delivery = services.delivery_queue(
        key="fresh", channel="in_app", purpose="marketing", customer=customer, content=Content(text="hi")
    )
    queued = services.delivery_queue(
        key="fresh-mail", channel="email", purpose="marketing", customer=customer, content=Content(text="hi")
    )
    assert delivery.status == "sent"
    with django_assert_num_queries(5):
        assert services.deliveries_send(ids=[queued.pk]) == {"sent": 1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_senders_recheck_one_customers_delayed_rows_in_turn_under_a_cap_of_one():
    # Two sending tasks wake at 08:00 with one delayed SMS each for the same customer: the customer's row lock
    # makes them take turns, so exactly one is sent and the other is suppressed frequency_cap.
    policy(quiet_hours_sms=True, sms_per_day=1)
    customer = sms_customer()
    rows = [send(customer, f"sms-{index}", at=SATURDAY_2230, channel="sms") for index in range(2)]
    # Saturday's cap saw the first row due on Sunday only, so both were queued
    assert [row.status for row in rows] == ["queued", "queued"]
    results = run_together(
        lambda: services.deliveries_send(ids=[rows[0].pk], now=SUNDAY_0800),
        lambda: services.deliveries_send(ids=[rows[1].pk], now=SUNDAY_0800),
    )

    assert sorted(results, key=lambda counts: sorted(counts)) == [{"sent": 1}, {"suppressed": 1}]
    outcomes = sorted((row.status, row.reason) for row in Delivery.objects.filter(customer=customer))
    assert outcomes == [("sent", ""), ("suppressed", "frequency_cap")]
