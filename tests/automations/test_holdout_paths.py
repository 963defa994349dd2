"""
Holdout customers receive nothing, on every path that can message or reward a customer for a workflow (issue 16):
the per-event run, the bulk run, a run resumed after a wait (or replayed) once the workflow holds its customer
out, and a workflow step that a campaign's holdout refuses (the e-mail after it is not sent either). The batch's
set-based lane and the state tags' entered/left runs have their own modules (`test_holdout_lane.py`,
`tests/statetags/test_state_tag_holdout.py`). A test run (`workflow_test`) writes and sends nothing for
anyone, so it is the documented exception: it traces the steps without the holdout.

Each test computes who is held out with the same stable hash (`held_out`) and asserts both sides: nothing for
the held-out customers (no delivery row, no e-mail, no points, no tag, no code) and the effect for the others.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from apps.automations import bulk, engine, services
from apps.automations.choices import HELD_OUT
from apps.automations.models import WorkflowRun
from apps.campaigns.models import CampaignHoldout, Code
from apps.campaigns.promotions import services as promo_services
from apps.customers import services as customer_services
from apps.customers.messaging.models import Delivery
from apps.loyalty.models import LedgerEntry
from apps.tagging.models import CustomerTag
from loyalty_site.lib.split import campaign_holdout_salt, held_out, workflow_holdout_salt
from tests.automations.test_engine_support import active_workflow, add_tags, definition
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EMAIL = {"id": "mail", "action": "notify.email", "params": {"subject": "Hello", "body": "Welcome"}}
POINTS = {"id": "pts", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Visit"}}


def _people(count: int = 24) -> list:
    return [CustomerFactory(email=f"p{index}@example.com") for index in range(count)]


def _split(workflow, people, percent: int) -> tuple[set[int], set[int]]:
    """(held out, receiving) by the workflow's stable holdout; both non-empty for the test to mean anything."""
    held = {p.pk for p in people if held_out(workflow_holdout_salt(workflow.pk), p.pk, percent)}
    assert 0 < len(held) < len(people)
    return held, {p.pk for p in people} - held


def _delivered_to() -> set[int]:
    return set(Delivery.objects.values_list("customer_id", flat=True))


def _tagged(name: str) -> set[int]:
    return set(CustomerTag.objects.filter(tag__name=name).values_list("customer_id", flat=True))


def _points_to() -> set[int]:
    return set(LedgerEntry.objects.values_list("membership__customer_id", flat=True))


def test_an_event_run_gives_held_out_customers_no_email_no_points_no_tag(fire):
    program_make()
    workflow = active_workflow("visit", "event.custom", [add_tags("Treated"), POINTS, EMAIL], holdout_percent=50)
    people = _people()
    held, receiving = _split(workflow, people, 50)

    for person in people:
        fire(customer_services.custom_event_record, customer=person, name="visit")

    runs = WorkflowRun.objects.filter(workflow=workflow)
    assert {run.customer_id for run in runs if (run.status, run.skip_reason) == ("skipped", HELD_OUT)} == held
    assert {run.customer_id for run in runs if run.status == "succeeded"} == receiving
    assert _delivered_to() == receiving
    assert sorted(message.to[0] for message in mail.outbox) == sorted(p.email for p in people if p.pk in receiving)
    assert _points_to() == receiving
    assert _tagged("Treated") == receiving


def test_a_bulk_run_queues_no_email_and_awards_no_points_to_held_out_customers():
    program_make()
    workflow = services.workflow_activate(
        workflow=services.workflow_create(
            name="bulk mail", definition=definition("customer.bulk_activity", [POINTS, EMAIL]), holdout_percent=50
        )
    )
    people = _people()
    held, receiving = _split(workflow, people, 50)

    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)

    run.refresh_from_db()
    assert run.status == "succeeded"
    assert (run.progress["held_out"], run.progress["processed"]) == (len(held), len(receiving))
    assert _delivered_to() == receiving
    assert _points_to() == receiving


def test_a_run_resumed_after_a_wait_sends_nothing_once_the_workflow_holds_its_customer_out(fire, queue):
    # given runs that started (and tagged) before the workflow had a holdout, and now wait
    workflow = active_workflow(
        "follow-up", "event.custom", [add_tags("Started"), {"id": "pause", "wait": {"days": 3}}, EMAIL]
    )
    people = _people(16)
    with time_machine.travel(START, tick=False):
        for person in people:
            fire(customer_services.custom_event_record, customer=person, name="visit")
    assert set(WorkflowRun.objects.values_list("status", flat=True)) == {"waiting"}
    # when the marketer publishes a 50 % holdout during the wait
    workflow = services.workflow_update(workflow=workflow, holdout_percent=50)
    workflow = services.workflow_activate(workflow=workflow)
    held, receiving = _split(workflow, people, 50)
    with time_machine.travel(START + timedelta(days=3), tick=False):
        assert engine.runs_resume_due() == len(people)
        queue.drain()

    # then the held-out customers' runs stop before the e-mail, recorded held out; the others send it
    runs = {run.customer_id: run for run in WorkflowRun.objects.filter(workflow=workflow)}
    assert {pk for pk, run in runs.items() if (run.status, run.skip_reason) == ("skipped", HELD_OUT)} == held
    assert {pk for pk, run in runs.items() if run.status == "succeeded"} == receiving
    assert _delivered_to() == receiving
    assert len(mail.outbox) == len(receiving)
    for pk in held:
        wait_step = runs[pk].steps.get(path="steps[1]")
        assert (wait_step.status, wait_step.outcome) == ("skipped", {"skip_reason": HELD_OUT})
    assert _tagged("Started") == {p.pk for p in people}  # what happened before the holdout stays


def test_a_replayed_run_of_a_held_out_customer_sends_nothing(fire, queue):
    workflow = active_workflow("mail", "event.custom", [EMAIL], holdout_percent=50)
    people = _people(16)
    held, _ = _split(workflow, people, 50)
    kept_out = next(p for p in people if p.pk in held)
    fire(customer_services.custom_event_record, customer=kept_out, name="visit")
    run = WorkflowRun.objects.get(customer=kept_out)
    assert (run.status, run.skip_reason) == ("skipped", HELD_OUT)
    # a run recorded failed (e.g. opened while the trigger filter could not be evaluated) and replayed
    WorkflowRun.objects.filter(pk=run.pk).update(status="failed", skip_reason="", error="boom")

    services.run_replay(run=WorkflowRun.objects.get(pk=run.pk))
    queue.drain()

    run.refresh_from_db()
    assert (run.status, run.skip_reason) == ("skipped", HELD_OUT)
    assert not Delivery.objects.exists()
    assert mail.outbox == []


def _voucher_campaign(name: str = "Spring", holdout: int = 50):
    campaign = campaign_with(
        name,
        holdout_percent=holdout,
        low_pool_threshold=0,
        incentives=[{"kind": "fixed_order", "amount": Decimal("5")}],
    )
    promo_services.codes_generate(campaign=campaign, pattern="SPR-#####", count=100)
    return campaign


VOUCHER_THEN_EMAIL = [
    {"id": "code", "action": "campaigns.issue_voucher", "params": {"campaign": "Spring"}},
    {
        "id": "cond",
        "if": {"field": "customer.email", "op": "is_set"},
        "then": [add_tags("Offered", step_id="offered")],
        "else": [],
    },
    {"id": "mail", "action": "notify.email", "params": {"subject": "Your code", "body": "Here it is"}},
]


def _campaign_split(campaign, people) -> tuple[set[int], set[int]]:
    held = {p.pk for p in people if held_out(campaign_holdout_salt(campaign.pk), p.pk, campaign.holdout_percent)}
    assert 0 < len(held) < len(people)
    return held, {p.pk for p in people} - held


def test_a_campaign_holdout_stops_the_workflow_run_no_code_and_no_email_after_it(fire):
    campaign = _voucher_campaign()
    workflow = active_workflow("offer", "event.custom", VOUCHER_THEN_EMAIL)
    people = _people()
    held, receiving = _campaign_split(campaign, people)

    for person in people:
        fire(customer_services.custom_event_record, customer=person, name="visit")

    runs = {run.customer_id: run for run in WorkflowRun.objects.filter(workflow=workflow)}
    reason = "held out of campaign “Spring”"
    assert {pk for pk, run in runs.items() if (run.status, run.skip_reason) == ("skipped", reason)} == held
    assert {pk for pk, run in runs.items() if run.status == "succeeded"} == receiving
    assert set(Code.objects.filter(customer__isnull=False).values_list("customer_id", flat=True)) == receiving
    assert set(CampaignHoldout.objects.values_list("customer_id", flat=True)) == held
    assert _delivered_to() == receiving
    assert len(mail.outbox) == len(receiving)
    assert _tagged("Offered") == receiving
    for pk in held:  # the trace says where and why the run stopped
        assert list(runs[pk].steps.order_by("pk").values_list("path", flat=True)) == ["trigger", "steps[0]"]
        assert runs[pk].steps.get(path="steps[0]").outcome["held_out"] is True


def test_a_bulk_run_stops_at_a_campaign_holdout_for_those_customers_only():
    campaign = _voucher_campaign()
    workflow = services.workflow_activate(
        workflow=services.workflow_create(
            name="bulk offer", definition=definition("customer.bulk_activity", VOUCHER_THEN_EMAIL)
        )
    )
    people = _people()
    held, receiving = _campaign_split(campaign, people)

    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)

    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.progress["held_out_of_campaign"] == len(held)
    assert run.progress["actions"] == {"code": len(people), "offered": len(receiving), "mail": len(receiving)}
    assert run.progress["branches"]["cond"] == {"then": len(receiving), "else": 0}
    assert set(Code.objects.filter(customer__isnull=False).values_list("customer_id", flat=True)) == receiving
    assert set(CampaignHoldout.objects.values_list("customer_id", flat=True)) == held
    assert _delivered_to() == receiving
    assert _tagged("Offered") == receiving
