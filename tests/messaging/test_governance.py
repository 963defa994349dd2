"""Send governance: frequency caps and quiet hours in the customer's time zone (across DST), priority."""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail

from apps.customers.consent import services as consent
from apps.customers.messaging import services
from apps.customers.messaging.models import SendingPolicy
from apps.customers.messaging.services import Content
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NEW_YORK = "America/New_York"
# 2026-11-01 02:00 EDT -> 01:00 EST: that Sunday has 25 hours in New York. 2026-03-08 has 23.
FALL_BACK_DAY_START = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
SPRING_FORWARD_DAY_START = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST


def policy(**fields) -> SendingPolicy:
    row = SendingPolicy.current()
    for name, value in fields.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


def send(customer, key, *, at, channel="email", purpose="marketing", cause="", priority=0):
    with time_machine.travel(at, tick=False):
        return services.message_send(
            key=key,
            channel=channel,
            purpose=purpose,
            customer=customer,
            content=Content(subject=key, text=key),
            cause=cause or f"campaign:{key}",
            priority=priority,
        )


def test_a_daily_cap_counts_the_customers_calendar_day_of_25_hours_across_the_fall_dst_change():
    policy(email_per_day=1)
    customer = CustomerFactory(time_zone=NEW_YORK)

    first = send(customer, "a", at=FALL_BACK_DAY_START + timedelta(minutes=30))  # 00:30 EDT
    # 24 h 30 min later it is still Sunday 23:30 EST in New York: the same calendar day
    same_day = send(customer, "b", at=FALL_BACK_DAY_START + timedelta(hours=24, minutes=30))
    next_day = send(customer, "c", at=FALL_BACK_DAY_START + timedelta(hours=25, minutes=10))  # Monday 00:10 EST

    assert [first.status, same_day.status, next_day.status] == ["sent", "suppressed", "sent"]
    assert same_day.reason == "frequency_cap"
    assert [message.subject for message in mail.outbox] == ["a", "c"]


def test_a_daily_cap_on_the_23_hour_spring_day_resets_at_local_midnight():
    policy(email_per_day=1)
    customer = CustomerFactory(time_zone=NEW_YORK)

    send(customer, "a", at=SPRING_FORWARD_DAY_START + timedelta(minutes=10))  # 00:10 EST
    # 23 h later it is already Monday 00:10 EDT: a new day although less than 24 h passed
    next_day = send(customer, "b", at=SPRING_FORWARD_DAY_START + timedelta(hours=23))

    assert next_day.status == "sent"


def test_weekly_and_all_channel_caps_and_transactional_messages_are_exempt():
    policy(email_per_week=2, any_per_day=2)
    customer = CustomerFactory(time_zone=NEW_YORK)
    monday = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)

    statuses = [
        send(customer, "e1", at=monday).status,
        send(customer, "i1", at=monday, channel="in_app").status,
        send(customer, "e2", at=monday).reason,  # third marketing message today: over the all-channel cap
        send(customer, "t1", at=monday, purpose="transactional").status,  # exempt
        send(customer, "e3", at=monday + timedelta(days=1)).status,  # second e-mail this week
        send(customer, "e4", at=monday + timedelta(days=2)).reason,  # third: over the weekly e-mail cap
        send(customer, "e5", at=monday + timedelta(days=7)).status,  # e1 is out of the 7-day week
    ]

    assert statuses == ["sent", "sent", "frequency_cap", "sent", "sent", "frequency_cap", "sent"]


def test_quiet_hours_delay_to_the_local_morning_after_the_dst_change_and_never_drop():
    policy(quiet_hours_start=time(21, 0), quiet_hours_end=time(8, 0), quiet_hours_sms=True)
    customer = CustomerFactory(time_zone=NEW_YORK, phone="+15551234567")
    consent.consent_grant(customer=customer, channel="sms", source="admin")  # SMS marketing needs an opt-in
    saturday_late = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)  # Sat Oct 31 22:30 EDT

    delayed = send(customer, "s", at=saturday_late, channel="sms")

    # 08:00 on Sunday is EST (UTC-5) after the change: 13:00 UTC, not 12:00
    assert (delayed.status, delayed.reason) == ("queued", "quiet_hours")
    assert delayed.send_after == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 11, 1, 12, 30, tzinfo=UTC), tick=False):
        assert services.deliveries_due_send() == {}  # 07:30 EST: still quiet
    with time_machine.travel(datetime(2026, 11, 1, 13, 0, 30, tzinfo=UTC), tick=False):
        assert services.deliveries_due_send() == {"sent": 1}
    delayed.refresh_from_db()
    assert (delayed.status, delayed.reason) == ("sent", "")


def test_quiet_hours_follow_each_customers_time_zone_and_spare_transactional():
    policy(
        quiet_hours_start=time(21, 0),
        quiet_hours_end=time(8, 0),
        quiet_hours_email=True,
        default_time_zone="Europe/Paris",
    )
    at = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # 18:00 in New York, 00:00 in Paris
    new_yorker = CustomerFactory(time_zone=NEW_YORK)
    parisian = CustomerFactory()  # no time zone of their own: the policy's default

    assert send(new_yorker, "ny", at=at).status == "sent"
    paris = send(parisian, "p", at=at)
    assert (paris.status, paris.send_after) == ("queued", datetime(2026, 6, 2, 6, 0, tzinfo=UTC))
    assert send(parisian, "receipt", at=at, purpose="transactional").status == "sent"


def test_the_higher_priority_workflow_wins_and_the_other_records_lower_priority():
    customer = CustomerFactory()
    at = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)

    high = send(customer, "vip", at=at, cause="workflow_run:1", priority=10)
    low = send(customer, "promo", at=at + timedelta(minutes=5), cause="workflow_run:2", priority=1)
    later = send(customer, "promo2", at=at + timedelta(hours=2), cause="workflow_run:3", priority=1)

    assert high.status == "sent"
    assert (low.status, low.reason) == ("suppressed", "lower_priority")
    assert later.status == "sent"  # outside the priority window


def test_a_queued_lower_priority_message_is_outranked_by_a_higher_one():
    policy(quiet_hours_start=time(21, 0), quiet_hours_end=time(8, 0), quiet_hours_email=True)
    customer = CustomerFactory()
    night = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)

    low = send(customer, "promo", at=night, cause="workflow_run:2", priority=1)
    high = send(customer, "vip", at=night + timedelta(minutes=1), cause="workflow_run:1", priority=10)

    low.refresh_from_db()
    assert (low.status, low.reason) == ("suppressed", "lower_priority")
    assert (high.status, high.reason) == ("queued", "quiet_hours")


def test_the_policy_refuses_bad_values_with_the_field():
    from django.core.exceptions import ValidationError

    row = SendingPolicy.current()
    row.default_time_zone = "Mars/Olympus"
    row.email_per_day, row.email_per_week = 5, 2
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert set(refused.value.message_dict) == {"default_time_zone", "email_per_week"}


# --- Workflows: priority between two workflows, "why didn't it fire", the policy in the console -----------


def test_two_workflows_on_one_trigger_the_higher_priority_sends_and_the_other_is_explained(fire, client):
    from django.contrib.auth.models import Group

    from apps.automations.models import WorkflowRun
    from apps.customers import services as customer_services
    from apps.customers.messaging.models import Delivery
    from tests.automations.test_engine_support import active_workflow
    from tests.factories import UserFactory

    email = {"action": "notify.email", "params": {"subject": "Hi", "body": "x"}}
    active_workflow("VIP welcome", "customer.activated", [email], message_priority=50)
    active_workflow("Generic welcome", "customer.activated", [email])
    customer = CustomerFactory()

    fire(customer_services.customer_activate, customer=customer)

    by_workflow = {delivery.cause: delivery for delivery in Delivery.objects.filter(customer=customer)}
    runs = {run.workflow.name: run for run in WorkflowRun.objects.select_related("workflow")}
    vip = by_workflow[f"workflow_run:{runs['VIP welcome'].pk}"]
    generic = by_workflow[f"workflow_run:{runs['Generic welcome'].pk}"]
    assert (vip.status, vip.priority) == ("sent", 50)
    assert (generic.status, generic.reason) == ("suppressed", "lower_priority")
    assert len(mail.outbox) == 1

    user = UserFactory(username="why", is_superuser=False)
    user.groups.add(Group.objects.get(name="marketer"))
    client.force_login(user)
    html = client.get(f"/admin/console/customers/{customer.pk}/").content.decode()
    assert 'data-testid="why-message">E-mail suppressed: a higher-priority workflow messaged the customer' in html


def test_a_marketer_edits_the_policy_in_the_console_audited_and_an_analyst_is_refused(client):
    from django.contrib.auth.models import Group

    from apps.platform.models import AuditEntry
    from tests.factories import UserFactory

    SendingPolicy.current()
    url = "/admin/customers/sendingpolicy/1/change/"
    form = {
        "default_time_zone": "Europe/Paris",
        "priority_window_minutes": "30",
        "email_per_day": "2",
        "quiet_hours_sms": "on",
    }

    analyst = UserFactory(username="an", is_superuser=False)
    analyst.groups.add(Group.objects.get(name="analyst"))
    client.force_login(analyst)
    assert client.post(url, form).status_code == 403
    assert SendingPolicy.current().email_per_day is None

    marketer = UserFactory(username="mk", is_superuser=False)
    marketer.groups.add(Group.objects.get(name="marketer"))
    client.force_login(marketer)
    assert client.post(url, {**form, "email_per_week": "1"}).status_code == 200  # week below day: refused
    assert SendingPolicy.current().email_per_day is None
    assert client.post(url, form).status_code == 302

    policy_row = SendingPolicy.current()
    assert (policy_row.email_per_day, policy_row.default_time_zone, policy_row.priority_window_minutes) == (
        2,
        "Europe/Paris",
        30,
    )
    entry = AuditEntry.objects.get(object_type="customers.sendingpolicy")
    assert entry.changes["email_per_day"] == {"old": None, "new": 2}
    assert entry.actor_id == marketer.pk
