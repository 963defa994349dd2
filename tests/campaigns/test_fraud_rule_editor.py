"""Fraud rules are edited with the visual condition editor: velocity fields offered, errors on the input, 403."""

import json

import pytest
from django.contrib.auth.models import Group

from apps.campaigns.fraud.models import FraudRule
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/campaigns/fraudrule/add/"


def _form(**overrides):
    data = {
        "name": "Fast orders",
        "description": "",
        "trigger": "order.created",
        "action": "hold_points",
        "condition": json.dumps({"field": "fraud.orders", "window": {"minutes": 30}, "op": "gte", "value": 3}),
        "is_enabled": "on",
    }
    data.update(overrides)
    return data


def _boot(response) -> dict:
    widget = response.context["adminform"].form.fields["condition"].widget
    return widget.boot("id_condition")


def test_the_editor_offers_the_velocity_fields_with_their_window_units(client):
    client.force_login(UserFactory(username="root"))
    response = client.get(ADD)

    boot = _boot(response)
    fields = {field["name"]: field for field in boot["catalog"]["fields"]}
    assert fields["fraud.orders"]["label"] == "Orders (window)"
    assert fields["fraud.orders"]["window_units"] == ["minutes", "hours", "days"]
    assert boot["scopes_from"]["field"] == "trigger"
    assert boot["scopes_from"]["map"]["order.created"] == ["customer", "fraud", "order"]
    assert boot["scopes_from"]["map"]["referral.registered"] == ["customer", "fraud", "referral"]
    assert b"data-condition-widget" in response.content


def test_a_rule_saved_from_the_editor_goes_through_the_service(client):
    client.force_login(UserFactory(username="root"))
    response = client.post(ADD, _form())
    assert response.status_code == 302
    rule = FraudRule.objects.get(name="Fast orders")
    assert rule.condition == {"field": "fraud.orders", "window": {"minutes": 30}, "op": "gte", "value": 3}


def test_a_bad_condition_is_refused_on_its_input_in_plain_words(client):
    client.force_login(UserFactory(username="root"))
    condition = {"all": [{"field": "fraud.orders", "window": {"weeks": 2}, "op": "gte", "value": 3}]}

    response = client.post(ADD, _form(condition=json.dumps(condition)))

    assert response.status_code == 200
    widget = response.context["adminform"].form.fields["condition"].widget
    assert [error["path"] for error in widget.errors] == ["all[0].window"]
    assert not FraudRule.objects.filter(name="Fast orders").exists()


def test_an_empty_condition_is_refused(client):
    client.force_login(UserFactory(username="root"))
    response = client.post(ADD, _form(condition=""))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["condition"]
    assert not FraudRule.objects.filter(name="Fast orders").exists()


def test_support_may_not_add_a_fraud_rule(client):
    support = UserFactory(username="sam", is_superuser=False)
    support.groups.add(Group.objects.get(name="support"))
    client.force_login(support)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, _form()).status_code == 403
    assert not FraudRule.objects.filter(name="Fast orders").exists()
