"""
The gallery's reminder templates wired to messaging: each installs and validates against the engine, and
sends a marketing e-mail through `notify.email` — one Delivery row per customer, sent to a consenting
customer, suppressed (with its reason) for an unsubscribed one.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from apps.automations import engine, gallery
from apps.automations.bulk import birthday_events_emit
from apps.automations.models import Workflow, WorkflowRun
from apps.campaigns.models import Code
from apps.campaigns.promotions import services as promotions
from apps.customers import services as customer_services
from apps.customers.messaging.models import Delivery
from apps.loyalty import services as loyalty
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory, UserFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

REMINDERS = {
    "loyalty_points_expiring_reminder": "loyalty.points_expiring",
    "loyalty_days_after_joining": "member.joined",
    "campaigns_voucher_expiring_reminder": "voucher.expiring",
    "planned_visit_reminder": "order.created",
    "birthday_message": "customer.birthday",
}


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def install(key: str, params: dict | None = None) -> Workflow:
    return gallery.template_install(key=key, params=params, user=UserFactory(), activate=True)


def pair() -> tuple:
    """A customer who consents to marketing e-mail and one who unsubscribed."""
    consenting = CustomerFactory(email="yes@example.com", first_name="Ana", accepts_marketing=True)
    unsubscribed = CustomerFactory(email="no@example.com", accepts_marketing=True)
    customer_services.customer_unsubscribe(customer=unsubscribed)
    return consenting, unsubscribed


def deliveries() -> dict[str, tuple[str, str, str]]:
    return {row.to: (row.channel, row.status, row.reason) for row in Delivery.objects.order_by("pk")}


def assert_one_sent_and_one_suppressed(subject: str) -> None:
    assert Delivery.objects.count() == 2
    assert deliveries() == {
        "yes@example.com": ("email", "sent", ""),
        "no@example.com": ("email", "suppressed", "unsubscribed"),
    }
    assert set(Delivery.objects.values_list("purpose", flat=True)) == {"marketing"}
    assert [(message.to, message.subject) for message in mail.outbox] == [(["yes@example.com"], subject)]
    runs = WorkflowRun.objects.filter(customer__email__in=["yes@example.com", "no@example.com"])
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.parametrize("key", list(REMINDERS))
def test_each_reminder_installs_validates_and_sends_a_marketing_email(key):
    spec = gallery.template_get(key)
    workflow = install(key)

    assert (workflow.status, workflow.trigger, workflow.template) == ("active", REMINDERS[key], key)
    assert spec.category in {"Reminders", "Loyalty"}
    emails = [step for step in engine_steps(workflow.definition["steps"]) if step.get("action") == "notify.email"]
    assert len(emails) == 1
    assert emails[0]["params"]["purpose"] == "marketing"


def engine_steps(steps: list[dict]) -> list[dict]:
    flat = []
    for step in steps:
        flat.append(step)
        flat += engine_steps(step.get("then", [])) + engine_steps(step.get("else", []))
    return flat


def test_points_expiring_in_3_days_emails_the_consenting_member_once_and_suppresses_the_unsubscribed(clock, fire):
    program = program_make(expiry_policy="days_after_activation", expiry_days=2, expiry_notice_days=3)
    install("loyalty_points_expiring_reminder", {"days": 3, "subject": "Your points expire soon"})
    consenting, unsubscribed = pair()
    for customer in (consenting, unsubscribed):
        membership, _ = loyalty.member_join(customer=customer, program=program)
        loyalty.points_award(membership=membership, points=120, reason="Welcome")

    fire(loyalty.points_expiring_notify)
    fire(loyalty.points_expiring_notify)  # the next day's job: each lot is announced once

    assert_one_sent_and_one_suppressed("Your points expire soon")
    sent = Delivery.objects.get(to="yes@example.com")
    assert "120 points expiring soon" in sent.text


def test_five_days_after_joining_emails_once_after_the_wait(clock, fire):
    program = program_make()
    install("loyalty_days_after_joining", {"subject": "How do you like the club, {{ customer.first_name }}?"})
    consenting, unsubscribed = pair()
    for customer in (consenting, unsubscribed):
        fire(loyalty.member_join, customer=customer, program=program)
    assert WorkflowRun.objects.filter(status="waiting").count() == 2

    clock.move_to(NOW + timedelta(days=4, hours=23))
    fire(engine.runs_resume_due)
    assert Delivery.objects.count() == 0  # not yet

    clock.move_to(NOW + timedelta(days=5, minutes=1))
    fire(engine.runs_resume_due)
    fire(engine.runs_resume_due)  # nothing left to resume: no second message

    assert_one_sent_and_one_suppressed("How do you like the club, Ana?")


def test_voucher_expiring_emails_the_code(clock, fire):
    install("campaigns_voucher_expiring_reminder", {"subject": "Use {{ voucher.code }} soon"})
    consenting, unsubscribed = pair()
    campaign = campaign_with("Soon", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    promotions.code_create(campaign=campaign, code="SOON-YES", expires_at=NOW + timedelta(days=2))
    promotions.code_create(campaign=campaign, code="SOON-NO", expires_at=NOW + timedelta(days=2))
    Code.objects.filter(code="SOON-YES").update(customer=consenting)
    Code.objects.filter(code="SOON-NO").update(customer=unsubscribed)

    fire(promotions.vouchers_expiring_announce)

    assert_one_sent_and_one_suppressed("Use SOON-YES soon")


def test_planned_visit_emails_only_who_did_not_come_back(clock, fire):
    install("planned_visit_reminder", {"days": 14, "subject": "See you soon"})
    consenting, unsubscribed = pair()
    back = CustomerFactory(email="back@example.com")
    for customer in (consenting, unsubscribed, back):
        fire(make_order, customer, total="30.00")

    clock.move_to(NOW + timedelta(days=7))
    fire(make_order, back, total="30.00")
    clock.move_to(NOW + timedelta(days=14, minutes=1))
    fire(engine.runs_resume_due)

    assert_one_sent_and_one_suppressed("See you soon")  # and nothing to the customer who came back
    assert WorkflowRun.objects.filter(customer=back, status="waiting").count() == 1  # from the second order


def test_birthday_message_on_the_day(clock, fire):
    install("birthday_message")
    consenting, unsubscribed = pair()
    for customer in (consenting, unsubscribed):
        type(customer).objects.filter(pk=customer.pk).update(birthday=date(1990, 11, 30))
    CustomerFactory(email="later@example.com", birthday=date(1990, 12, 1))

    fire(birthday_events_emit)
    fire(birthday_events_emit)  # a second tick the same day sends nothing new

    assert_one_sent_and_one_suppressed("Happy birthday, Ana!")
