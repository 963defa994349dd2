from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.automations import services
from apps.automations.definitions import definition_validate
from apps.automations.models import ActionEffect, Workflow, WorkflowRun, WorkflowRunStep, WorkflowVersion
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent
from apps.tagging import services as tag_services
from apps.tagging.models import CustomerTag
from tests.automations.test_engine_support import active_workflow, add_tags, definition
from tests.factories import CustomerFactory, ProductFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def tag_names(customer) -> list[str]:
    return sorted(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


def errors_of(callable_, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as error:
        callable_(**kwargs)
    return error.value.message_dict


# --- Validation ---------------------------------------------------------------------------------------


def test_an_invalid_definition_is_refused_with_every_error_by_path_and_nothing_is_saved():
    bad = {
        "schema": 1,
        "trigger": {"event": "order.created", "where": {"field": "order.total", "op": "starts_with", "value": 1}},
        "steps": [
            {"id": "s1", "action": "customer.add_tags", "params": {"tags": ["ok", "{{ order.nope }}"]}},
            {
                "id": "s1",
                "if": {"field": "customer.unknown", "op": "eq", "value": 1},
                "then": [{"action": "no.such_action"}],
                "else": [{"wait": {"days": 400}}, {"wait": {"until_time": "25:00"}}],
            },
            {"action": "customer.remove_tags", "params": {}},
            {"action": "notify.webhook", "params": {"url": "ftp://x", "secret": "whsec_eA==", "extra": 1}},
            {"action": "customer.add_tags", "wait": {"days": 1}},
        ],
    }

    errors = errors_of(services.workflow_create, name="", definition=bad)

    assert sorted(errors) == [
        "name",
        "steps[0].params.tags[1]",
        "steps[1].else[0].wait.days",
        "steps[1].else[1].wait.until_time",
        "steps[1].id",
        "steps[1].if.field",
        "steps[1].then[0].action",
        "steps[2].params.tags",
        "steps[3].params.extra",
        "steps[3].params.url",
        "steps[4]",
        "trigger.where.op",
    ]
    assert errors["steps[1].then[0].action"] == ["Unknown action 'no.such_action'."]
    assert errors["steps[1].id"] == ["Duplicate step id 's1'."]
    assert errors["steps[2].params.tags"] == ["This parameter is required."]
    assert errors["steps[1].else[0].wait.days"] == ["A wait lasts at most 365 days."]
    assert Workflow.objects.count() == 0


def test_dynamic_parameters_are_refused_where_the_trigger_has_no_such_scope():
    # a registration has no order: {{ order.currency }} cannot be resolved
    errors = definition_validate(definition("customer.registered", [add_tags("{{ order.currency }} buyer")]))

    assert [e.path for e in errors] == ["steps[0].params.tags[0]"]


def test_a_non_dynamic_parameter_refuses_variables():
    errors = definition_validate(
        definition(
            "order.created",
            [{"action": "customer.update_attribute", "params": {"field": "attribute", "key": "{{ order.currency }}"}}],
        )
    )

    assert [(e.path, e.message) for e in errors] == [
        ("steps[0].params.key", "This parameter does not accept dynamic parameters.")
    ]


def test_unknown_trigger_and_bad_settings_are_refused():
    errors = errors_of(
        services.workflow_create,
        name="x",
        definition={"schema": 1, "trigger": {"event": "nope"}, "steps": []},
        max_runs_per_customer=0,
        active_from="yesterday",
        schedule_cron="0 3 * * *",
    )

    assert errors == {
        "trigger.event": ["Unknown trigger 'nope'."],
        "max_runs_per_customer": ["A whole number of at least 1 (or empty)."],
        "active_from": ["A date and time (ISO 8601)."],
        "schedule_cron": ["Only a bulk-activity workflow has a schedule."],
    }


def test_the_active_window_must_be_ordered():
    errors = errors_of(
        services.workflow_create,
        name="x",
        definition=definition("order.created", []),
        active_from="2026-06-02T00:00:00Z",
        active_until="2026-06-01T00:00:00Z",
    )

    assert errors == {"active_until": ["Must be after “active from”."]}


# --- Versions and editing -----------------------------------------------------------------------------


def test_activation_freezes_an_immutable_version_and_editing_keeps_the_live_one():
    user = UserFactory()
    workflow = services.workflow_create(
        name="First buy", definition=definition("order.created", [add_tags("A")]), user=user, max_runs_per_customer=1
    )
    assert (workflow.status, workflow.current_version, workflow.created_by) == ("draft", None, user)

    workflow = services.workflow_activate(workflow=workflow, user=user)
    v1 = workflow.current_version
    assert (v1.number, v1.definition, v1.settings["max_runs_per_customer"]) == (
        1,
        definition("order.created", [add_tags("A")]),
        1,
    )

    # activating again without changes makes no new version
    assert services.workflow_activate(workflow=workflow).current_version == v1

    workflow = services.workflow_update(workflow=workflow, definition=definition("order.created", [add_tags("B")]))
    assert (workflow.status, workflow.has_unpublished_changes, workflow.current_version) == ("active", True, v1)
    v1.refresh_from_db()
    assert v1.definition == definition("order.created", [add_tags("A")])

    # editing it back to the published definition clears the flag
    workflow = services.workflow_update(workflow=workflow, definition=definition("order.created", [add_tags("A")]))
    assert workflow.has_unpublished_changes is False

    workflow = services.workflow_update(workflow=workflow, max_runs_per_customer=2)
    assert workflow.has_unpublished_changes is True
    workflow = services.workflow_activate(workflow=workflow)
    assert list(WorkflowVersion.objects.filter(workflow=workflow).values_list("number", flat=True)) == [2, 1]
    assert workflow.current_version.settings["max_runs_per_customer"] == 2
    assert workflow.has_unpublished_changes is False


def test_a_published_workflow_cannot_change_its_trigger():
    workflow = active_workflow("x", "order.created", [add_tags("A")])

    errors = errors_of(
        services.workflow_update, workflow=workflow, definition=definition("order.cancelled", [add_tags("A")])
    )

    assert errors == {"trigger.event": ["The trigger of a published workflow cannot change; duplicate it."]}
    workflow.refresh_from_db()
    assert workflow.trigger == "order.created"


def test_only_an_active_workflow_can_be_paused():
    workflow = services.workflow_create(name="x", definition=definition("order.created", []))

    assert errors_of(services.workflow_pause, workflow=workflow) == {
        "status": ["Only an active workflow can be paused."]
    }
    workflow.refresh_from_db()
    assert workflow.status == "draft"


# --- Branches, evaluated values, dynamic parameters ---------------------------------------------------------


def test_the_branch_taken_and_the_values_that_decided_it_are_recorded(fire):
    active_workflow(
        "big or small",
        "order.created",
        [
            {
                "id": "size",
                "if": {"field": "order.total", "op": "gte", "value": 100},
                "then": [add_tags("Big", step_id="big")],
                "else": [add_tags("Small", step_id="small")],
            }
        ],
    )
    big, small = CustomerFactory(), CustomerFactory()

    fire(make_order, big, total="100.00")
    fire(make_order, small, total="99.99")

    assert (tag_names(big), tag_names(small)) == (["Big"], ["Small"])
    step = WorkflowRunStep.objects.get(run__customer=small, step_id="size")
    assert (step.kind, step.branch, step.outcome["result"]) == ("condition", "else", False)
    assert step.outcome["values"] == {"order.total": "99.99"}
    assert not WorkflowRunStep.objects.filter(run__customer=small, step_id="big").exists()


def test_dynamic_parameters_render_from_the_event_and_a_list_expands_to_several_tags(fire):
    active_workflow(
        "currency and product tags",
        "product.purchased",
        [add_tags("{{ order.currency }} buyer", "{{ product.tags }}", "Country {{ customer.country }}")],
    )
    customer = CustomerFactory(country="FR")
    product = ProductFactory()
    tag_services.product_tags_set(product=product, names=["Kids & Baby", "Toys"])

    fire(make_order, customer, currency="EUR", products=[product])

    assert tag_names(customer) == ["Country FR", "EUR buyer", "Kids & Baby", "Toys"]
    step = WorkflowRunStep.objects.get(path="steps[0]")
    assert step.inputs["params"] == {"tags": ["EUR buyer", "Kids & Baby", "Toys", "Country FR"]}


def test_a_custom_event_workflow_filters_on_the_event_name(fire):
    workflow = active_workflow(
        "reviews",
        "event.custom",
        [add_tags("Reviewer")],
        where={"field": "event.name", "op": "eq", "value": "review_posted"},
    )
    reviewer, subscriber = CustomerFactory(), CustomerFactory()

    fire(customer_services.custom_event_record, customer=reviewer, name="review_posted")
    fire(customer_services.custom_event_record, customer=subscriber, name="newsletter_signup")

    assert (tag_names(reviewer), tag_names(subscriber)) == (["Reviewer"], [])
    skipped = WorkflowRun.objects.get(workflow=workflow, customer=subscriber)
    assert (skipped.status, skipped.skip_reason) == ("skipped", "trigger filter is false")
    trigger_step = skipped.steps.get(path="trigger")
    assert trigger_step.outcome["where"] is False


# --- Test runs -----------------------------------------------------------------------------------------------


def test_a_test_run_traces_every_step_and_changes_nothing(django_assert_max_num_queries):
    customer = CustomerFactory(email="t@example.com")
    order = make_order(customer, total="120.00", currency="EUR")
    workflow = services.workflow_create(
        name="draft",
        definition=definition(
            "order.created",
            [
                {
                    "id": "c",
                    "if": {"field": "order.total", "op": "gt", "value": 100},
                    "then": [
                        add_tags("{{ order.currency }} big", step_id="t"),
                        {"id": "w", "wait": {"days": 2}},
                        {"id": "m", "action": "notify.email", "params": {"subject": "Hi", "body": "Thanks"}},
                    ],
                    "else": [add_tags("small", step_id="e")],
                }
            ],
            where={"field": "order.channel", "op": "eq", "value": "online"},
        ),
    )
    counts = {
        model: model.objects.count()
        for model in (WorkflowRun, WorkflowRunStep, ActionEffect, CustomerTag, DomainEvent, WorkflowVersion)
    }

    trace = services.workflow_test(workflow=workflow, customer=customer, subject=order.pk)

    assert trace["trigger"]["passed"] is True
    assert [(s["id"], s["badge"]) for s in trace["steps"]] == [
        ("c", "then"),
        ("t", "would_run"),
        ("w", "waiting"),
        ("m", "would_run"),
    ]
    assert trace["steps"][1]["would"] == {"would_add": ["EUR big"]}
    assert trace["steps"][3]["would"]["would_email"] == "t@example.com"
    assert trace["actions"] == ["Add customer tags (tags: EUR big)", "Send an e-mail (subject: Hi, body: Thanks)"]
    assert trace["summary"] == "2 actions would run, after 1 wait."
    assert trace["subject"] == {"order": order.pk}
    assert {model: model.objects.count() for model in counts} == counts
    assert tag_names(customer) == []


def test_a_test_run_of_a_filtered_out_customer_says_so():
    customer = CustomerFactory()
    make_order(customer, channel="pos")
    trace = services.workflow_test(
        definition=definition(
            "order.created", [add_tags("x")], where={"field": "order.channel", "op": "eq", "value": "online"}
        ),
        customer=customer,
    )

    assert trace["trigger"]["passed"] is False
    assert trace["steps"] == []
    assert trace["summary"] == "The trigger filter is false for this customer: the workflow would not run."


def test_money_values_keep_their_precision_in_the_trace():
    customer = CustomerFactory()
    make_order(customer, total="10.10")
    trace = services.workflow_test(
        definition=definition(
            "order.created",
            [{"id": "c", "if": {"field": "order.total", "op": "eq", "value": 10.1}, "then": [], "else": []}],
        ),
        customer=customer,
    )
    assert trace["steps"][0]["result"] is True
    assert trace["steps"][0]["values"] == {"order.total": "10.10"}
    assert Decimal(trace["steps"][0]["values"]["order.total"]) == Decimal("10.10")


def test_the_trace_labels_each_evaluated_value_with_its_field():
    customer = CustomerFactory(country="US")
    make_order(customer, total="10.10")
    condition = {
        "all": [
            {"field": "order.total", "op": "gt", "value": 5},
            {"not": {"field": "customer.country", "op": "eq", "value": "FR"}},
        ]
    }

    trace = services.workflow_test(
        definition=definition("order.created", [{"id": "c", "if": condition, "then": [], "else": []}]),
        customer=customer,
    )

    assert trace["steps"][0]["details"] == [
        ["order.total (all[0])", "10.10"],
        ["customer.country (all[1].not)", "US"],
    ]
