"""The builder shows the notify.* actions' `template` param as a picker of published templates of its channel."""

from __future__ import annotations

import pytest

from apps.automations import registry
from apps.automations.builder.boot import catalog_payload
from apps.customers.messaging.templating import services as templates
from apps.customers.messaging.templating.selectors import template_check

pytestmark = pytest.mark.django_db


def _published(key: str, channel: str) -> None:
    template = templates.template_create(
        key=key,
        name=key.title(),
        channel=channel,
        purpose="marketing",
        subject="" if channel == "sms" else "S",
        body="B",
    )
    templates.template_publish(template=template)


def test_the_template_param_lists_published_templates_of_the_actions_channel(monkeypatch):
    _published("sms-promo", "sms")
    _published("mail-promo", "email")
    templates.template_create(key="sms-draft", name="Draft", channel="sms", purpose="marketing", subject="", body="x")
    spec = registry.ActionSpec(
        name="notify.sms",
        label="Send an SMS",
        params=[
            registry.ParamSpec(name="template", type="text", label="Template"),
            registry.ParamSpec(name="body", type="text", label="Body", dynamic=True),
        ],
    )
    monkeypatch.setitem(registry._actions, "notify.sms", spec)

    action = next(row for row in catalog_payload()["actions"] if row["name"] == "notify.sms")
    template_param, body_param = action["params"]

    assert template_param["choices"] == [{"value": "sms-promo", "label": "Sms-Promo (sms-promo)"}]
    assert template_param["dynamic"] is False
    assert body_param["choices"] == [] and body_param["dynamic"] is True


def test_template_check_names_what_is_wrong():
    _published("mail-promo", "email")
    templates.template_create(key="draft", name="Draft", channel="email", purpose="marketing", subject="S", body="B")

    assert template_check("mail-promo", channel="email") == []
    assert template_check("mail-promo", channel="sms") == ['template "mail-promo" is for email, not sms']
    assert template_check("draft", channel="email") == ['template "draft" has no published version']
    assert template_check("nope", channel="email") == ['no message template "nope"']
