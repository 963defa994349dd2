"""
Holdouts in the batch's set-based lane (`engine/sets.py`, PostgreSQL only): the workflow's holdout is skipped
"held out" when the lane opens the runs, and a campaign's holdout reported by a step stops those runs there
(no code, no later tag or points) while the other runs of the same batch go on.
"""

from decimal import Decimal

import pytest

from apps.automations import tasks as engine_tasks
from apps.automations.choices import HELD_OUT
from apps.automations.engine import opening, sets
from apps.automations.models import WorkflowRun
from apps.campaigns.models import CampaignHoldout, Code
from apps.campaigns.promotions import services as promo_services
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent
from apps.loyalty.models import LedgerEntry
from apps.tagging.models import CustomerTag
from loyalty_site.lib import tasks
from loyalty_site.lib.split import campaign_holdout_salt, held_out, workflow_holdout_salt
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POINTS = {"id": "pts", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Visit"}}


@pytest.fixture
def lane(monkeypatch, settings):
    """Committed events whose tasks the test runs itself; records how many events the lane took."""
    settings.AUTOMATIONS_EVENT_BATCH = 50
    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda *args, **kwargs: None)
    taken: list[int] = []
    real = sets.events_process_set

    def spy(events, scope, **kwargs):
        taken.extend(event.pk for event in events)
        return real(events, scope, **kwargs)

    monkeypatch.setattr(opening, "events_process_set", spy)
    return taken


def _events(people) -> list[int]:
    for person in people:
        customer_services.custom_event_record(customer=person, name="visit")
    return list(
        DomainEvent.objects.filter(name="event.custom", status="pending").order_by("pk").values_list("pk", flat=True)
    )


def _tagged(name: str) -> set[int]:
    return set(CustomerTag.objects.filter(tag__name=name).values_list("customer_id", flat=True))


def test_the_lane_gives_the_workflows_holdout_no_tag_and_no_points(lane):
    program_make()
    workflow = active_workflow(
        "visit", "event.custom", [add_tags("Treated", step_id="tag"), POINTS], holdout_percent=50
    )
    people = CustomerFactory.create_batch(20)
    held = {p.pk for p in people if held_out(workflow_holdout_salt(workflow.pk), p.pk, 50)}
    assert 0 < len(held) < 20
    ids = _events(people)

    engine_tasks.process_domain_event(ids[0])

    assert sorted(lane) == ids  # every event went through the set-based lane
    runs = WorkflowRun.objects.filter(workflow=workflow)
    assert {r.customer_id for r in runs if (r.status, r.skip_reason) == ("skipped", HELD_OUT)} == held
    receiving = {p.pk for p in people} - held
    assert {r.customer_id for r in runs if r.status == "succeeded"} == receiving
    assert _tagged("Treated") == receiving
    assert set(LedgerEntry.objects.values_list("membership__customer_id", flat=True)) == receiving
    for run in runs.filter(status="skipped"):
        assert list(run.steps.values_list("path", "status")) == [("trigger", "skipped")]


def test_the_lane_stops_the_runs_a_campaign_holds_out_and_finishes_the_others(lane):
    program_make()
    campaign = campaign_with(
        "Spring", holdout_percent=50, low_pool_threshold=0, incentives=[{"kind": "fixed_order", "amount": Decimal("5")}]
    )
    promo_services.codes_generate(campaign=campaign, pattern="SPR-#####", count=50)
    workflow = active_workflow(
        "offer",
        "event.custom",
        [
            {"id": "code", "action": "campaigns.issue_voucher", "params": {"campaign": "Spring"}},
            {"id": "cond", "if": {"field": "customer.email", "op": "is_set"}, "then": [POINTS], "else": []},
            add_tags("Offered", step_id="tag"),
        ],
    )
    people = CustomerFactory.create_batch(20)
    held = {p.pk for p in people if held_out(campaign_holdout_salt(campaign.pk), p.pk, 50)}
    assert 0 < len(held) < 20
    receiving = {p.pk for p in people} - held
    ids = _events(people)

    engine_tasks.process_domain_event(ids[0])

    assert sorted(lane) == ids
    runs = {run.customer_id: run for run in WorkflowRun.objects.filter(workflow=workflow)}
    reason = "held out of campaign “Spring”"
    assert {pk for pk, r in runs.items() if (r.status, r.skip_reason) == ("skipped", reason)} == held
    assert {pk for pk, r in runs.items() if r.status == "succeeded"} == receiving
    assert set(Code.objects.filter(customer__isnull=False).values_list("customer_id", flat=True)) == receiving
    assert set(CampaignHoldout.objects.values_list("customer_id", flat=True)) == held
    assert set(LedgerEntry.objects.values_list("membership__customer_id", flat=True)) == receiving
    assert _tagged("Offered") == receiving
    for pk in held:
        assert list(runs[pk].steps.order_by("path").values_list("path", flat=True)) == ["steps[0]", "trigger"]
