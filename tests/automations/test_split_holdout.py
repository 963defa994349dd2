"""The A/B `split` step and the workflow holdout: validation, stable assignment, execution, trace, bulk."""

import pytest

from apps.automations import services
from apps.automations.choices import HELD_OUT
from apps.automations.definitions import definition_validate
from apps.automations.engine.split import split_choose
from apps.automations.models import WorkflowRun
from apps.customers import services as customer_services
from apps.tagging.models import CustomerTag
from loyalty_site.lib.split import branch_index, held_out, workflow_holdout_salt
from loyalty_site.lib.stats import binomial_range
from tests.automations.test_engine_support import active_workflow, add_tags, definition
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

Z_999 = 3.2905


def split_step(*branches, step_id="ab"):
    return {
        "id": step_id,
        "split": [
            {"name": name, "percent": percent, "steps": [add_tags(f"got {name}", step_id=f"{step_id}-{name}")]}
            for name, percent in branches
        ],
    }


def errors_of(steps):
    return {(error.path, error.message) for error in definition_validate(definition("event.custom", steps))}


def test_a_valid_split_passes_and_bad_ones_name_their_path():
    assert errors_of([split_step(("A", 50), ("B", 50))]) == set()
    assert ("steps[0].split", "The branches' percents add up to 90; they must add up to 100.") in errors_of(
        [split_step(("A", 50), ("B", 40))]
    )
    assert ("steps[0].split[1].name", "Two branches are named 'a'.") in errors_of([split_step(("A", 50), ("a", 50))])
    assert ("steps[0].split", "A split has 2 to 10 branches.") in errors_of([split_step(("A", 100))])
    bad_percent = split_step(("A", 50), ("B", 50))
    bad_percent["split"][1]["percent"] = 50.5
    assert ("steps[0].split[1].percent", "A whole percent from 1 to 99.") in errors_of([bad_percent])
    nested = split_step(("A", 50), ("B", 50))
    nested["split"][0]["steps"] = [{"action": "nope"}]
    assert ("steps[0].split[0].steps[0].action", "Unknown action 'nope'.") in errors_of([nested])


def test_saving_a_workflow_with_a_bad_split_is_refused_with_the_path():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        services.workflow_create(name="bad", definition=definition("event.custom", [split_step(("A", 60), ("B", 60))]))
    assert "steps[0].split" in refused.value.message_dict


def test_the_split_is_stable_per_customer_and_its_shares_are_within_the_binomial_interval():
    step = split_step(("A", 50), ("B", 30), ("C", 20))
    first = [split_choose(step, "steps[0]", workflow_id=7, customer_id=pk).name for pk in range(1, 10_001)]
    again = [split_choose(step, "steps[0]", workflow_id=7, customer_id=pk).name for pk in range(1, 10_001)]
    assert first == again
    for name, percent in (("A", 50), ("B", 30), ("C", 20)):
        low, high = binomial_range(10_000, percent / 100, z=Z_999)
        assert low <= first.count(name) <= high, (name, first.count(name))
    # another workflow's split is independent of this one
    other = [split_choose(step, "steps[0]", workflow_id=8, customer_id=pk).name for pk in range(1, 10_001)]
    agree = sum(1 for a, b in zip(first, other, strict=True) if a == b) / 10_000
    assert 0.36 < agree < 0.40  # 0.5² + 0.3² + 0.2² = 0.38 when independent


def test_holdout_shares_are_within_the_binomial_interval():
    held = sum(held_out(workflow_holdout_salt(3), pk, 10) for pk in range(1, 10_001))
    low, high = binomial_range(10_000, 0.10, z=Z_999)
    assert low <= held <= high


def test_a_run_takes_the_customers_branch_and_records_it(fire):
    workflow = active_workflow("ab", "event.custom", [split_step(("A", 50), ("B", 50))])
    customers = [CustomerFactory() for _ in range(6)]
    for customer in customers:
        fire(customer_services.custom_event_record, customer=customer, name="visit")
    for customer in customers:
        expected = "AB"[branch_index(f"split:{workflow.pk}:ab", customer.pk, [50, 50])]
        run = WorkflowRun.objects.get(workflow=workflow, customer=customer)
        step = run.steps.get(path="steps[0]")
        assert (step.kind, step.branch, step.outcome["branch"]) == ("split", expected, expected)
        assert step.inputs == {"split": [{"name": "A", "percent": 50}, {"name": "B", "percent": 50}]}
        assert run.steps.filter(path=f"steps[0].split[{'AB'.index(expected)}].steps[0]").exists()
        assert list(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True)) == [
            f"got {expected}"
        ]
        # the test run (dry run) takes the same branch for the saved workflow
        trace = services.workflow_test(workflow=workflow, customer=customer)
        assert trace["steps"][0]["kind"] == "split"
        assert trace["steps"][0]["badge"] == expected
        assert [entry["path"] for entry in trace["steps"] if entry["kind"] == "action"] == [
            f"steps[0].split[{'AB'.index(expected)}].steps[0]"
        ]


def test_holdout_customers_receive_nothing_and_are_recorded_held_out(fire):
    workflow = active_workflow("with holdout", "event.custom", [add_tags("Treated")], holdout_percent=30)
    customers = [CustomerFactory() for _ in range(40)]
    for customer in customers:
        fire(customer_services.custom_event_record, customer=customer, name="visit")
    held = {c.pk for c in customers if held_out(workflow_holdout_salt(workflow.pk), c.pk, 30)}
    assert 0 < len(held) < 40
    runs = {run.customer_id: run for run in WorkflowRun.objects.filter(workflow=workflow)}
    for customer in customers:
        tagged = CustomerTag.objects.filter(customer=customer).exists()
        if customer.pk in held:
            assert (runs[customer.pk].status, runs[customer.pk].skip_reason) == ("skipped", HELD_OUT)
            assert not tagged
            assert list(runs[customer.pk].steps.values_list("kind", flat=True)) == ["trigger"]
        else:
            assert runs[customer.pk].status == "succeeded"
            assert tagged


def test_holdout_is_validated_on_save():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        services.workflow_create(name="x", definition=definition("event.custom", []), holdout_percent=80)
    assert "holdout_percent" in refused.value.message_dict


def test_a_bulk_run_splits_its_audience_and_leaves_the_holdout_out():
    from apps.automations import bulk

    workflow = services.workflow_create(
        name="bulk ab",
        definition=definition("customer.bulk_activity", [split_step(("A", 50), ("B", 50))]),
        holdout_percent=20,
    )
    workflow = services.workflow_activate(workflow=workflow)
    customers = [CustomerFactory() for _ in range(30)]
    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)
    run.refresh_from_db()
    held = {c.pk for c in customers if held_out(workflow_holdout_salt(workflow.pk), c.pk, 20)}
    expected = {"A": 0, "B": 0}
    for customer in customers:
        if customer.pk in held:
            assert not CustomerTag.objects.filter(customer=customer).exists()
            continue
        name = "AB"[branch_index(f"split:{workflow.pk}:ab", customer.pk, [50, 50])]
        expected[name] += 1
        assert list(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True)) == [
            f"got {name}"
        ]
    assert run.progress["held_out"] == len(held)
    assert run.progress["branches"]["ab"] == expected
