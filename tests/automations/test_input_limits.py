"""
Bounded input (issue 10): conditions and definitions are depth- and size-checked before anything recurses
into them, and texts are length-capped before the `{{ … }}` scanner or a regex sees them.
"""

import time

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from apps.automations import services
from apps.automations.definitions import MAX_PARAM_TEXT, definition_validate
from apps.automations.models import Workflow
from loyalty_site.lib.conditions import EvaluationContext, condition_validate
from loyalty_site.lib.conditions.operators import MAX_MATCHED_TEXT, words_match
from loyalty_site.lib.conditions.templating import (
    MAX_TEMPLATE_TEXT,
    TemplateTooLong,
    _scan,
    template_render,
    template_validate,
)
from loyalty_site.lib.json_limits import json_text_error, json_value_error
from tests.automations.test_engine_support import add_tags, definition
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ONE_MB = 1024 * 1024
LEAF = '{"field": "customer.country", "op": "eq", "value": "DE"}'


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True, is_superuser=True))
    return client


def workflow_body(where: str) -> str:
    head = '{"name": "Deep", "definition": {"schema": 1, "trigger": {"event": "customer.registered", "where": '
    return head + where + '}, "steps": []}}'


@pytest.mark.parametrize("levels", [1_200, 100_000])
def test_a_condition_nested_thousands_deep_is_a_400_with_its_path_through_the_workflow_api(api, levels):
    body = workflow_body('{"not": ' * levels + LEAF + "}" * levels)

    response = api.post("/api/v1/workflows/", body, content_type="application/json")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    # the body, definition, trigger, where: the 101st object is refused where it opens
    assert error["path"] == "definition.trigger.where" + ".not" * 97
    assert error["message"] == "The JSON is nested deeper than 100 levels."
    assert Workflow.objects.count() == 0


def test_a_condition_deeper_than_the_language_allows_is_refused_by_validation_through_the_api(api):
    body = workflow_body('{"not": ' * 40 + LEAF + "}" * 40)

    response = api.post("/api/v1/workflows/", body, content_type="application/json")

    assert response.status_code == 400
    assert [(error["path"], error["message"]) for error in response.json()["errors"]] == [
        ("trigger.where" + ".not" * 10, "the condition is nested deeper than 10 levels")
    ]
    assert Workflow.objects.count() == 0


def test_services_refuse_a_definition_nested_thousands_deep_built_in_python():
    where: dict = {"field": "customer.country", "op": "eq", "value": "DE"}
    for _ in range(50_000):
        where = {"not": where}
    deep = {"schema": 1, "trigger": {"event": "customer.registered", "where": where}, "steps": []}

    errors = definition_validate(deep)
    with pytest.raises(ValidationError):
        services.workflow_create(name="Deep", definition=deep)

    assert [(error.path, error.message) for error in errors] == [
        ("trigger.where" + ".not" * 98, "The definition is nested deeper than 100 levels.")
    ]
    assert Workflow.objects.count() == 0


def test_condition_validation_stops_at_its_depth_and_node_limits_without_walking_the_rest():
    leaf = {"field": "customer.country", "op": "eq", "value": "DE"}
    deep: dict = leaf
    for _ in range(50_000):
        deep = {"not": deep}

    assert [str(error) for error in condition_validate(deep)] == [
        ".".join(["not"] * 10) + ": the condition is nested deeper than 10 levels"
    ]
    assert [str(error) for error in condition_validate({"any": [leaf] * 1_000_000})] == [
        "any[199]: the condition has more than 200 nodes"
    ]


def test_json_limits_name_the_path_where_the_depth_is_crossed():
    text = '{"a": [1, {"b": [[[[["x"]]]]]}], "c": "{[not structure]}"}'

    assert json_text_error(text, max_depth=5) == json_value_error({"a": [1, {"b": [[[[["x"]]]]]}]}, max_depth=5)
    assert str(json_text_error(text, max_depth=5)) == "a[1].b[0][0]: nested deeper than 5 levels"
    assert json_text_error(text, max_depth=8) is None
    # brackets inside strings (escaped quotes included) are text, not structure
    assert json_text_error('{"k": "[[[[[[\\"[[[["}', max_depth=2) is None
    assert str(json_value_error({"a": [{}, {}, {}]}, max_nodes=3)) == "a[1]: more than 3 objects and lists"


def test_the_template_scanner_is_linear_and_texts_are_capped_before_it():
    flood = "{{" * (ONE_MB // 2)

    started = time.perf_counter()
    capped = template_validate(flood, path="steps[0].params.body", scopes=("customer",))
    at_the_cap = template_validate(flood[:MAX_TEMPLATE_TEXT], path="steps[0].params.body", scopes=("customer",))
    pieces, names = _scan(flood)
    many = _scan("{{ customer.email }}" * 50_000)
    elapsed = time.perf_counter() - started

    assert [str(error) for error in capped] == [
        f"steps[0].params.body: text longer than {MAX_TEMPLATE_TEXT} characters"
    ]
    assert [str(error) for error in at_the_cap] == ['steps[0].params.body: unbalanced "{{" or "}}"']
    assert (pieces, names) == ([flood], [])
    assert (len(many[0]), set(many[1])) == (50_001, {"customer.email"})
    # quadratic scanning took 11 s for 12 KB; a linear one does all of the above at once (generous bound)
    assert elapsed < 1.0
    with pytest.raises(TemplateTooLong):
        template_render(flood, EvaluationContext(customer=None, now=None))


def test_definitions_cap_text_params_before_scanning_them():
    huge = "{{" * (ONE_MB // 2)
    steps = [add_tags("ok"), {"action": "customer.add_tags", "params": {"tags": ["fine", huge]}}]

    errors = definition_validate(definition("customer.registered", steps))

    assert [(error.path, error.message) for error in errors] == [
        ("steps[1].params.tags[1]", f"At most {MAX_PARAM_TEXT} characters.")
    ]


def test_word_matching_reads_a_bounded_prefix_of_long_texts():
    long_text = "x" * (MAX_MATCHED_TEXT + 10) + " her"

    assert words_match("gift for her", ["her"]) is True
    assert words_match(long_text, ["her"]) is False
    assert words_match("her " + long_text, ["her"]) is True


def test_the_builders_save_endpoint_answers_a_body_nested_thousands_deep_with_a_400_and_its_path(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    where = '{"not": ' * 100_000 + LEAF + "}" * 100_000
    body = (
        '{"name": "Deep", "settings": {}, "definition": {"schema": 1, '
        '"trigger": {"event": "customer.registered", "where": ' + where + '}, "steps": []}}'
    )

    response = client.post("/admin/automations/builder/new/save/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "definition.trigger.where" + ".not" * 97, "message": "The JSON is nested deeper than 100 levels."}
    ]
    assert Workflow.objects.count() == 0
