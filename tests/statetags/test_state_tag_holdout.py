"""
A state tag's "entered"/"left" steps with a workflow holdout: a held-out customer carries the tag (it describes
them) but gets neither the entered e-mail nor the left tag; their runs are recorded skipped "held out".
"""

from django.core import mail

from apps.automations.choices import HELD_OUT
from apps.automations.models import WorkflowRun
from apps.customers.messaging.models import Delivery
from loyalty_site.lib.split import held_out, workflow_holdout_salt

from .conftest import tags

DEFINITION = {
    "schema": 1,
    "trigger": {"event": "customer.state_tag", "where": {"field": "customer.total_spent", "op": "gte", "value": 100}},
    "state": {"tag": "Club"},
    "steps": [{"id": "e1", "action": "notify.email", "params": {"subject": "Welcome to the club", "body": "Hi"}}],
    "left": [{"id": "l1", "action": "customer.add_tags", "params": {"tags": ["Former club member"]}}],
}


def test_held_out_customers_get_no_entered_or_left_steps(clock, feed):
    created = feed.post(
        "/api/v1/workflows/", {"name": "Club", "definition": DEFINITION, "holdout_percent": 50}, expect=201
    )
    feed.post(f"/api/v1/workflows/{created['id']}/activate/")
    people = [feed.customer(f"c-{index}", email=f"c{index}@example.com") for index in range(12)]
    held = {p.pk for p in people if held_out(workflow_holdout_salt(created["id"]), p.pk, 50)}
    assert 0 < len(held) < len(people)

    for person in people:
        order = feed.order(person, "120.00")
        assert "Club" in tags(person)  # the state itself holds for everyone
        feed.cancel(order)

    receiving = {p.pk for p in people} - held
    assert {p.pk for p in people if "Former club member" in tags(p)} == receiving
    assert set(Delivery.objects.values_list("customer_id", flat=True)) == receiving
    assert len(mail.outbox) == len(receiving)
    runs = WorkflowRun.objects.filter(workflow_id=created["id"])
    skipped = {(r.customer_id, r.context["state"]) for r in runs if (r.status, r.skip_reason) == ("skipped", HELD_OUT)}
    assert skipped == {(pk, state) for pk in held for state in ("entered", "left")}
    assert {(r.customer_id, r.context["state"]) for r in runs if r.status == "succeeded"} == {
        (pk, state) for pk in receiving for state in ("entered", "left")
    }
    for run in runs.filter(status="skipped"):
        assert list(run.steps.values_list("path", "status")) == [("trigger", "skipped")]
