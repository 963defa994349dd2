"""An earning rule's conditions are validated on save, with paths, by the service the admin and the API call."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from apps.loyalty import services
from apps.loyalty.models import EarningRule
from tests.factories import UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

TYPO = {"field": "customer.total_spent", "op": "equals", "value": 1}
TYPO_MESSAGE = (
    '"equals" is not an operator; a money field takes eq, ne, gt, gte, lt, lte, in, not_in, is_set, is_not_set'
)
VALID = {"field": "customer.total_spent", "op": "gte", "value": 100}


def deep_json(levels: int) -> str:
    return '{"not": ' * levels + '{"field": "customer.country", "op": "eq", "value": "DE"}' + "}" * levels


def rule_body(program_id: int, conditions: str) -> str:
    return f'{{"program": {program_id}, "name": "Deep", "kind": "per_amount", "conditions": {conditions}}}'


def deep_value(levels: int) -> dict:
    node: dict = {"field": "customer.country", "op": "eq", "value": "DE"}
    for _ in range(levels):
        node = {"not": node}
    return node


@pytest.fixture
def staff_api():
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_service_refuses_an_unknown_operator_with_its_path_and_stores_nothing():
    program = program_make()

    with pytest.raises(ValidationError) as refused:
        services.earning_rule_create(program=program, name="Big spenders", kind="per_amount", conditions=TYPO)

    assert refused.value.message_dict == {"conditions.op": [TYPO_MESSAGE]}
    assert EarningRule.objects.count() == 0


def test_the_service_checks_the_scopes_of_the_rule_kind():
    program = program_make()
    event_in_order_rule = {"field": "event.name", "op": "eq", "value": "review"}
    order_in_event_rule = {"field": "order.total", "op": "gt", "value": 10}

    with pytest.raises(ValidationError) as order_rule:
        services.earning_rule_create(program=program, name="a", kind="per_amount", conditions=event_in_order_rule)
    with pytest.raises(ValidationError) as event_rule:
        services.earning_rule_create(
            program=program, name="b", kind="fixed_event", event_name="review", conditions=order_in_event_rule
        )
    fine = services.earning_rule_create(
        program=program,
        name="c",
        kind="fixed_event",
        event_name="review",
        points=Decimal("5"),
        conditions=event_in_order_rule,
    )

    assert order_rule.value.message_dict == {
        "conditions.field": ['"event.name" is not available here (it needs a event)']
    }
    assert event_rule.value.message_dict == {
        "conditions.field": ['"order.total" is not available here (it needs a order)']
    }
    assert list(EarningRule.objects.values_list("name", "conditions")) == [("c", event_in_order_rule)]
    assert fine.conditions == event_in_order_rule


def test_an_update_with_invalid_conditions_changes_nothing():
    program = program_make()
    rule = services.earning_rule_create(program=program, name="Spenders", kind="per_amount", conditions=VALID)

    with pytest.raises(ValidationError) as refused:
        services.earning_rule_update(rule=rule, name="Renamed", conditions=TYPO)

    rule.refresh_from_db()
    assert refused.value.message_dict == {"conditions.op": [TYPO_MESSAGE]}
    assert (rule.name, rule.conditions) == ("Spenders", VALID)


def test_a_condition_nested_thousands_deep_is_refused_by_the_service_before_it_is_walked():
    program = program_make()

    with pytest.raises(ValidationError) as refused:
        services.earning_rule_create(program=program, name="Deep", kind="per_amount", conditions=deep_value(5000))

    [(path, messages)] = refused.value.message_dict.items()
    assert path == "conditions" + ".not" * 40
    assert messages == ["the condition is nested deeper than 40 levels"]
    assert EarningRule.objects.count() == 0


def test_the_api_refuses_the_typo_with_its_path(staff_api):
    program = program_make()

    response = staff_api.post(
        "/api/v1/loyalty/rules/",
        {"program": program.pk, "name": "Big spenders", "kind": "per_amount", "conditions": TYPO},
        format="json",
    )

    assert response.status_code == 400
    assert [(error["path"], error["message"]) for error in response.json()["errors"]] == [
        ("conditions.op", TYPO_MESSAGE)
    ]
    assert EarningRule.objects.count() == 0


def test_the_api_updates_through_the_service(staff_api):
    program = program_make()
    rule = services.earning_rule_create(program=program, name="Spenders", kind="per_amount", conditions=VALID)

    refused = staff_api.patch(f"/api/v1/loyalty/rules/{rule.pk}/", {"conditions": TYPO}, format="json")
    accepted = staff_api.patch(
        f"/api/v1/loyalty/rules/{rule.pk}/", {"conditions": {"field": "loyalty.tier", "op": "eq", "value": "Gold"}}
    )

    rule.refresh_from_db()
    assert refused.status_code == 400
    assert [error["path"] for error in refused.json()["errors"]] == ["conditions.op"]
    assert accepted.status_code == 200
    assert rule.conditions == {"field": "loyalty.tier", "op": "eq", "value": "Gold"}


@pytest.mark.parametrize("levels", [1_200, 100_000])
def test_the_api_answers_a_condition_nested_thousands_deep_with_a_400_and_its_path(staff_api, levels):
    program = program_make()
    body = rule_body(program.pk, deep_json(levels))

    response = staff_api.post("/api/v1/loyalty/rules/", body, content_type="application/json")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    # the parser stops at the 101st nested object: the body, then "conditions" and 99 "not"s
    assert error["path"] == "conditions" + ".not" * 99
    assert error["message"] == "The JSON is nested deeper than 100 levels."
    assert EarningRule.objects.count() == 0


def test_the_api_answers_a_condition_deeper_than_the_language_allows_with_the_validators_path(staff_api):
    program = program_make()
    body = rule_body(program.pk, deep_json(30))

    response = staff_api.post("/api/v1/loyalty/rules/", body, content_type="application/json")

    assert response.status_code == 400
    assert [(error["path"], error["message"]) for error in response.json()["errors"]] == [
        ("conditions" + ".not" * 10, "the condition is nested deeper than 10 levels")
    ]


def _admin_post(client, program, conditions: str):
    return client.post(
        "/admin/loyalty/earningrule/add/",
        {
            "program": program.pk,
            "name": "Big spenders",
            "kind": "per_amount",
            "is_active": "on",
            "points": "1",
            "multiplier": "1",
            "conditions": conditions,
            "limits-TOTAL_FORMS": "0",  # (the points limits inline, left empty)
            "limits-INITIAL_FORMS": "0",
        },
    )


def test_the_admin_form_refuses_the_typo_with_its_path(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    program = program_make()

    refused = _admin_post(client, program, '{"field": "customer.total_spent", "op": "equals", "value": 1}')
    accepted = _admin_post(client, program, '{"field": "customer.total_spent", "op": "gte", "value": 100}')

    assert refused.status_code == 200
    # In the marketer's words, and the editor is told the exact input (the operator).
    form = refused.context["adminform"].form
    assert form.errors["conditions"] == [
        "Total spent: this comparison is not available for this field; choose another."
    ]
    assert form.fields["conditions"].widget.errors == [{"path": "op", "message": form.errors["conditions"][0]}]
    assert accepted.status_code == 302
    assert list(EarningRule.objects.values_list("name", "conditions")) == [("Big spenders", VALID)]


def test_the_admin_form_refuses_json_nested_thousands_deep_without_parsing_it(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    program = program_make()

    response = _admin_post(client, program, deep_json(100_000))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["conditions"] == [
        "The JSON is nested deeper than 100 levels (at " + ".".join(["not"] * 100) + ")."
    ]
    assert EarningRule.objects.count() == 0
