"""The daily `customer.birthday` trigger: set-based selection, Feb 29, once per day, the engine's run path."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.automations import bulk
from apps.automations.models import WorkflowRun
from apps.automations.services import workflow_activate, workflow_create, workflow_pause
from apps.customers.models import Customer, DomainEvent
from apps.tagging.models import CustomerTag
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(settings, django_capture_on_commit_callbacks):
    settings.TASKS_SYNC = True

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


def birthday_workflow(user, tag="Birthday"):
    workflow = workflow_create(
        name="Birthday tag",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.birthday"},
            "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": [tag]}}],
        },
        user=user,
    )
    return workflow_activate(workflow=workflow, user=user)


def tagged(tag="Birthday") -> set[str]:
    return set(CustomerTag.objects.filter(tag__name=tag).values_list("customer__first_name", flat=True))


def test_birthday_q_matches_month_and_day_and_feb_29_on_feb_28_of_non_leap_years():
    for name, born in [("mar1", date(1990, 3, 1)), ("feb28", date(1985, 2, 28)), ("feb29", date(2000, 2, 29))]:
        CustomerFactory(first_name=name, birthday=born)
    CustomerFactory(first_name="none", birthday=None)

    def matched(day):
        return set(Customer.objects.filter(bulk.birthday_q(day)).values_list("first_name", flat=True))

    assert matched(date(2027, 2, 28)) == {"feb28", "feb29"}  # 2027 is not a leap year
    assert matched(date(2027, 3, 1)) == {"mar1"}
    assert matched(date(2028, 2, 28)) == {"feb28"}  # leap year: Feb 29 exists
    assert matched(date(2028, 2, 29)) == {"feb29"}
    assert matched(date(2100, 2, 28)) == {"feb28", "feb29"}  # 2100 is not a leap year


def test_birthday_tick_runs_the_workflow_for_todays_birthdays_once(worker):
    user = UserFactory()
    birthday_workflow(user)
    CustomerFactory(first_name="today", birthday=date(1990, 6, 15))
    CustomerFactory(first_name="leapling", birthday=date(2000, 2, 29))
    CustomerFactory(first_name="tomorrow", birthday=date(1990, 6, 16))
    CustomerFactory(first_name="unknown", birthday=None)

    with time_machine.travel(datetime(2026, 6, 15, 0, 5, tzinfo=UTC), tick=False):
        emitted = worker(bulk.birthday_events_emit)
        again = worker(bulk.birthday_events_emit)  # the hourly tick fires again the same day

    assert (emitted, again) == (1, 0)
    assert tagged() == {"today"}
    run = WorkflowRun.objects.get()
    assert (run.kind, run.status, run.customer.first_name) == ("event", "succeeded", "today")
    assert DomainEvent.objects.filter(name="customer.birthday", status="processed").count() == 1

    with time_machine.travel(datetime(2027, 2, 28, 0, 5, tzinfo=UTC), tick=False):
        worker(bulk.birthday_events_emit)
    assert tagged() == {"today", "leapling"}


def test_birthday_selection_is_one_statement_whatever_the_number_of_customers():
    user = UserFactory()
    birthday_workflow(user)

    def queries(count):
        CustomerFactory.create_batch(count, birthday=date(1980, 7, 1))
        with CaptureQueriesContext(connection) as captured:
            bulk.birthday_events_emit(today=date(2026, 7, 1))
        DomainEvent.objects.filter(name="customer.birthday").delete()
        return len(captured)

    assert queries(2) == queries(60)


def test_no_birthday_events_without_an_active_birthday_workflow():
    user = UserFactory()
    workflow_pause(workflow=birthday_workflow(user), user=user)
    CustomerFactory(birthday=date(1990, 6, 15))

    assert bulk.birthday_events_emit(today=date(2026, 6, 15)) == 0
    assert DomainEvent.objects.filter(name="customer.birthday").count() == 0
