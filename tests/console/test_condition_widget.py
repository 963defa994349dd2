"""The condition editor's server side: the live segment preview (permission-checked) and plain-words errors."""

import json

import pytest
from django.contrib.auth.models import Group

from apps.campaigns.models import Segment
from apps.tagging.services import tags_add
from loyalty_site.lib.conditions.editor import condition_errors_plain, condition_relative_path
from loyalty_site.lib.forms import ConditionField
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

PREVIEW = "/admin/campaigns/segments/preview/"
VIP = {"field": "customer.tags", "op": "contains", "value": "VIP"}


def client_for(client, role=None, **flags):
    user = UserFactory(username=f"u-{role or 'none'}", is_staff=True, is_superuser=False, **flags)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


def post(client, body):
    return client.post(PREVIEW, data=json.dumps(body), content_type="application/json")


def test_preview_counts_the_matching_customers_and_shows_a_few(client):
    for email in ("a@example.com", "b@example.com"):
        tags_add(customer=CustomerFactory(email=email), names=["VIP"])
    CustomerFactory(email="c@example.com")

    answer = post(client_for(client, "marketer"), {"condition": {"all": [VIP]}})

    assert answer.status_code == 200
    assert answer.json()["count"] == 2
    assert sorted(item["label"].split(" · ")[-1] for item in answer.json()["sample"]) == [
        "a@example.com",
        "b@example.com",
    ]
    assert Segment.objects.count() == 0  # a preview writes nothing


def test_preview_of_an_incomplete_condition_is_a_400_with_the_path_and_plain_words(client):
    answer = post(client_for(client, "analyst"), {"condition": {"all": [{"field": "customer.tags", "op": "contains"}]}})

    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"path": "all[0].value", "message": "Tag name is required."}]


@pytest.mark.parametrize("body", ["not json", "[1]", "{" * 5000])
def test_preview_of_a_body_that_is_not_a_condition_object_is_a_400(client, body):
    answer = client_for(client, "marketer").post(PREVIEW, data=body, content_type="application/json")
    assert answer.status_code == 400


@pytest.mark.parametrize("role", [None, "support", "integration"])
def test_preview_is_refused_without_the_segment_and_customer_view_permissions(client, role):
    answer = post(client_for(client, role), {"condition": VIP})
    assert answer.status_code == 403


def test_preview_needs_a_post(client):
    assert client_for(client, "marketer").get(PREVIEW).status_code == 405


@pytest.mark.parametrize(
    ("condition", "path", "message", "plain"),
    [
        ({"all": [{"op": "eq"}]}, "condition.all[0].field", "a field name is required", "Choose a field."),
        (
            {"field": "customer.total_spent", "op": "gt"},
            "condition.value",
            '"gt" needs a value',
            "Total spent: enter an amount.",
        ),
        (
            {"field": "order.total", "op": "gt", "value": 1},
            "field",
            '"order.total" is not available here (it needs a order)',
            "Order total cannot be used here: it is only known it needs a order.",
        ),
        (
            {"field": "customer.country", "op": "in", "value": []},
            "value",
            '"in" takes a non-empty list',
            "Country: enter a value.",
        ),
    ],
)
def test_errors_are_put_in_the_marketers_words_under_the_conditions_root(condition, path, message, plain):
    assert condition_errors_plain(condition, [(path, message)]) == [
        {"path": condition_relative_path(path), "message": plain}
    ]


def test_a_condition_field_refuses_with_plain_messages_and_hands_the_paths_to_its_editor():
    field = ConditionField(check=lambda condition: [("condition.all[0].value", '"contains" needs a value')])

    with pytest.raises(Exception) as refused:
        field.clean(json.dumps({"all": [{"field": "customer.tags", "op": "contains"}]}))

    assert refused.value.messages == ["Tag name is required."]
    assert field.widget.errors == [{"path": "all[0].value", "message": "Tag name is required."}]
    assert field.clean("") is None and field.clean("{}") is None
