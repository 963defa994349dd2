"""`/api/v1/message-templates/`: CRUD, variants, publish, preview; scopes and permissions; errors with paths."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.customers.messaging.templating import render_for
from apps.customers.messaging.templating import services as templates
from apps.customers.messaging.templating.models import MessageTemplate, TemplateVariant
from apps.platform.services import api_token_create
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/message-templates/"
NEW = {
    "key": "welcome",
    "name": "Welcome",
    "channel": "email",
    "purpose": "marketing",
    "subject": "Hi {{ customer.first_name }}",
    "body": "Points: {{ loyalty.balance }}",
}


def client_for(role: str, scopes: list[str] | None = None) -> APIClient:
    user = UserFactory(username=f"api-{role}", is_superuser=False, is_staff=False)
    user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    if scopes is None:
        client.force_authenticate(user)
    else:
        _token, raw = api_token_create(user=user, name="t", scopes=scopes)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_marketer_token_creates_edits_publishes_and_previews_as_sent():
    api = client_for("marketer", ["campaigns"])
    customer = CustomerFactory(first_name="Ana", language="pt-BR")

    created = api.post(URL, NEW, format="json")
    template_id = created.json()["id"]
    variant = api.post(
        f"{URL}{template_id}/variants/",
        {"locale": "pt-BR", "subject": "Olá {{ customer.first_name }}", "body": "Pontos"},
        format="json",
    )
    published = api.post(f"{URL}{template_id}/publish/", format="json")
    preview = api.post(
        f"{URL}{template_id}/preview/", {"customer_id": customer.pk, "version": "published"}, format="json"
    )

    assert created.status_code == 201
    assert created.json()["draft"]["variants"] == [{"locale": "en", "subject": NEW["subject"], "body": NEW["body"]}]
    assert variant.status_code == 200 and [v["locale"] for v in variant.json()["draft"]["variants"]] == ["en", "pt-br"]
    assert published.status_code == 200
    assert (published.json()["draft"], published.json()["published"]["number"]) == (None, 1)
    sent = render_for("welcome", customer, channel="email", context={})
    assert preview.status_code == 200
    assert preview.json() == {
        "subject": "Olá Ana",
        "text": sent.text,
        "html": sent.html,
        "template_id": template_id,
        "version": 1,
        "locale": "pt-br",
    }


def test_unknown_variable_is_a_400_with_the_field_path_and_nothing_is_stored():
    api = client_for("marketer")

    response = api.post(URL, {**NEW, "body": "Hi {{ customer.nickname }}"}, format="json")

    assert response.status_code == 400
    assert [(e["path"], e["message"]) for e in response.json()["errors"]] == [
        ("body", 'unknown variable "customer.nickname"')
    ]
    assert MessageTemplate.objects.count() == 0


def test_bad_input_is_a_400_with_paths_never_a_500():
    api = client_for("marketer")
    template = templates.template_create(**NEW)

    too_long = api.post(URL, {**NEW, "key": "long", "body": "x" * 20_001}, format="json")
    duplicate = api.post(URL, NEW, format="json")
    bad_locale = api.post(
        f"{URL}{template.pk}/variants/", {"locale": "not a tag", "body": "x", "subject": "x"}, format="json"
    )
    nothing = api.post(f"{URL}{template.pk}/preview/", {"customer_id": 99999}, format="json")

    assert too_long.status_code == 400 and too_long.json()["errors"][0]["path"] == "body"
    assert duplicate.status_code == 400 and duplicate.json()["errors"][0]["path"] == "key"
    assert bad_locale.status_code == 400 and bad_locale.json()["errors"][0]["path"] == "locale"
    assert nothing.status_code == 400 and nothing.json()["errors"][0]["path"] == "customer_id"
    assert MessageTemplate.objects.count() == 1 and TemplateVariant.objects.count() == 1


def test_a_token_without_the_campaigns_scope_is_403_and_changes_nothing():
    template = templates.template_create(**NEW)
    api = client_for("marketer", ["ingest"])

    responses = [
        api.get(URL),
        api.post(URL, {**NEW, "key": "other"}, format="json"),
        api.post(f"{URL}{template.pk}/publish/", format="json"),
        api.delete(f"{URL}{template.pk}/"),
    ]

    assert [response.status_code for response in responses] == [403] * 4
    assert list(MessageTemplate.objects.values_list("key", flat=True)) == ["welcome"]
    assert not template.versions.filter(status="published").exists()


def test_an_analyst_reads_but_may_not_write_or_publish():
    template = templates.template_create(**NEW)
    api = client_for("analyst")

    listing = api.get(URL)
    write = api.post(f"{URL}{template.pk}/variants/", {"locale": "en", "subject": "x", "body": "x"}, format="json")
    publish = api.post(f"{URL}{template.pk}/publish/", format="json")

    assert listing.status_code == 200 and listing.json()["count"] == 1
    assert (write.status_code, publish.status_code) == (403, 403)
    assert TemplateVariant.objects.get().body == NEW["body"]


def test_list_costs_a_fixed_number_of_queries(django_assert_num_queries):
    for index in range(6):
        template = templates.template_create(**{**NEW, "key": f"t{index}"})
        templates.template_publish(template=template)
        templates.variant_save(template=template, locale="de", subject="Hallo", body="Hallo")
    user = UserFactory(username="lister", is_superuser=False, is_staff=False)
    user.groups.add(Group.objects.get(name="marketer"))
    user.get_all_permissions()
    api = APIClient()
    api.force_authenticate(user)

    # count, templates, versions, variants
    with django_assert_num_queries(4):
        response = api.get(URL)
    assert response.status_code == 200 and len(response.json()["results"]) == 6
