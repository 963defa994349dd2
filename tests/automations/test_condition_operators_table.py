"""The operator table: one definition per operator, read by both evaluators, the catalog and the builder."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from apps.automations.builder.describe import condition_sentence
from loyalty_site.lib.conditions import catalog_describe, fields_all
from loyalty_site.lib.conditions.operators import NOTHING, OPERATORS, VALUE, VALUES, WHERE, operators_for_type
from tests.factories import UserFactory

EXPECTED_OPERATORS = {
    "eq": ("is", VALUE),
    "ne": ("is not", VALUE),
    "gt": ("is greater than", VALUE),
    "gte": ("is at least", VALUE),
    "lt": ("is less than", VALUE),
    "lte": ("is at most", VALUE),
    "in": ("is one of", VALUES),
    "not_in": ("is none of", VALUES),
    "contains": ("contains", VALUE),
    "not_contains": ("does not contain", VALUE),
    "contains_any": ("contains any of", VALUES),
    "contains_words_any": ("contains any of the words", VALUES),
    "starts_with": ("starts with", VALUE),
    "ends_with": ("ends with", VALUE),
    "is_set": ("is set", NOTHING),
    "is_not_set": ("is not set", NOTHING),
    "any": ("has any item where", WHERE),
    "all": ("has every item where", WHERE),
    "none": ("has no item where", WHERE),
}


def test_the_table_holds_every_operator_of_the_language_once_with_its_label_and_operand():
    assert {name: (spec.label, spec.takes) for name, spec in OPERATORS.items()} == EXPECTED_OPERATORS


def test_operators_by_type_are_derived_from_the_table():
    assert operators_for_type("money") == ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "is_set", "is_not_set")
    assert operators_for_type("choice") == ("eq", "ne", "in", "not_in", "is_set", "is_not_set")
    assert operators_for_type("boolean") == ("eq", "ne", "is_set", "is_not_set")
    assert operators_for_type("date") == ("eq", "ne", "gt", "gte", "lt", "lte", "is_set", "is_not_set")
    assert operators_for_type("tags") == (
        "contains",
        "not_contains",
        "contains_any",
        "is_set",
        "is_not_set",
        "any",
        "all",
        "none",
    )
    assert operators_for_type("list") == ("is_set", "is_not_set", "any", "all", "none")


def test_every_field_offers_only_operators_with_both_meanings_where_it_compiles():
    for spec in fields_all():
        for op in spec.operators:
            operator = OPERATORS[op]
            assert spec.type in operator.meanings, (spec.name, op)
            if spec.compilable and spec.type != "list":
                assert operator.compiles(spec.type), (spec.name, op)


@pytest.mark.django_db
def test_the_catalog_api_lists_the_operator_table(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    described = client.get("/api/v1/workflow-fields/").json()

    assert described["operators"]["gte"] == "is at least"
    by_name = {spec["name"]: spec for spec in described["operator_specs"]}
    assert by_name["gt"] == {"name": "gt", "label": "is greater than", "date_label": "is after", "takes": "value"}
    assert by_name["contains_any"] == {
        "name": "contains_any",
        "label": "contains any of",
        "date_label": "contains any of",
        "takes": "values",
    }
    assert [spec["name"] for spec in described["operator_specs"]] == list(EXPECTED_OPERATORS)
    assert catalog_describe()["operator_specs"] == described["operator_specs"]


@pytest.mark.django_db
def test_the_builder_boots_with_the_catalogs_operator_table_and_audience_flags(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    boot = client.get("/admin/automations/builder/new/").context["boot"]

    assert boot["catalog"]["operators"] == catalog_describe()["operator_specs"]
    fields = {field["name"]: field for field in boot["catalog"]["fields"]}
    assert fields["customer.total_spent"]["ops"] == list(operators_for_type("money"))
    # tag lists compile to EXISTS: the builder offers them in bulk audiences
    assert (fields["customer.tags"]["audience"], fields["order.total"]["audience"]) == (True, False)


def test_no_second_operator_table_in_the_builder_sources():
    # The labels live in the operator table only; the builder's JS and the sentence helper read them.
    root = Path(settings.BASE_DIR)
    sources = {
        "editor.js": (root / "static/conditions/editor.js").read_text(),
        "widget.js": (root / "static/conditions/widget.js").read_text(),
        "conditions/model.js": (root / "static/conditions/model.js").read_text(),
        "model.js": (root / "static/automations/builder/model.js").read_text(),
        "describe.py": (root / "apps/automations/builder/describe.py").read_text(),
    }
    labels = [spec.label for spec in OPERATORS.values() if " " in spec.label] + ["is on or after", "is before"]
    for name, text in sources.items():
        found = [label for label in labels if re.search(rf"[\"']{re.escape(label)}[\"']", text)]
        assert found == [], name


def test_sentences_use_the_catalogs_labels_and_date_wording():
    assert (
        condition_sentence(
            {
                "all": [
                    {"field": "customer.total_spent", "op": "gte", "value": 500},
                    {"field": "customer.last_order_at", "op": "lt", "value": {"days_ago": 30}},
                    {
                        "field": "order.lines",
                        "op": "none",
                        "where": {"field": "line.title", "op": "contains_words_any", "value": ["her", "women"]},
                    },
                ]
            }
        )
        == "(Total spent is at least 500 and Last order at is before 30 days ago and "
        "Order lines has no item where Line title contains any of the words her, women)"
    )
