"""Console pages of message templates and the brand: permissions, save/publish, preview as sent, test send."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from apps.customers.messaging.templating import render_for
from apps.customers.messaging.templating import services as templates
from apps.customers.messaging.templating.models import Brand, MessageTemplate, TemplateVariant
from apps.customers.messaging.templating.selectors import get_brand
from apps.platform.models import AuditEntry
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def login(client, role, **fields):
    user = UserFactory(username=f"msg-{role}", is_superuser=False, is_staff=True, **fields)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def _template(**fields) -> MessageTemplate:
    values = {
        "key": "welcome",
        "name": "Welcome",
        "channel": "email",
        "purpose": "marketing",
        "subject": "Hi {{ customer.first_name }}",
        "body": "Hello **{{ customer.first_name }}**",
    }
    values.update(fields)
    return templates.template_create(**values)


def test_marketer_creates_a_template_and_an_unknown_variable_is_shown_at_its_field(client):
    login(client, "marketer")

    refused = client.post(
        "/admin/messaging/templates/add/",
        {
            "key": "promo",
            "name": "Promo",
            "channel": "email",
            "purpose": "marketing",
            "default_locale": "en",
            "subject": "Hi",
            "body": "{{ customer.shoe_size }}",
        },
    )
    created = client.post(
        "/admin/messaging/templates/add/",
        {
            "key": "promo",
            "name": "Promo",
            "channel": "email",
            "purpose": "marketing",
            "default_locale": "en",
            "subject": "Hi {{ customer.first_name }}",
            "body": "Your code {{ voucher.code }}",
        },
    )

    assert refused.status_code == 200
    assert refused.context["form"].errors == {"body": ['unknown variable "customer.shoe_size"']}
    template = MessageTemplate.objects.get()
    assert created.status_code == 302 and created["Location"] == f"/admin/messaging/templates/{template.pk}/"
    assert TemplateVariant.objects.get().body == "Your code {{ voucher.code }}"


def test_analyst_may_read_but_not_create_edit_publish_or_send_and_nothing_changes(client):
    template = _template()
    customer = CustomerFactory()
    login(client, "analyst", email="analyst@example.com")

    assert client.get("/admin/messaging/templates/").status_code == 200
    assert client.get(f"/admin/messaging/templates/{template.pk}/").status_code == 200
    responses = [
        client.post(
            "/admin/messaging/templates/add/",
            {"key": "x", "name": "x", "channel": "sms", "purpose": "marketing", "default_locale": "en", "body": "x"},
        ),
        client.post(f"/admin/messaging/templates/{template.pk}/", {"locale": "en", "subject": "S", "body": "changed"}),
        client.post(f"/admin/messaging/templates/{template.pk}/publish/"),
        client.post(f"/admin/messaging/templates/{template.pk}/send-test/", {"customer": customer.pk}),
        client.post("/admin/messaging/brand/", {"name": "Hacked"}),
    ]

    assert [response.status_code for response in responses] == [403] * 5
    assert MessageTemplate.objects.count() == 1
    assert TemplateVariant.objects.get().body == "Hello **{{ customer.first_name }}**"
    assert not template.versions.filter(status="published").exists()
    assert mail.outbox == []
    assert not Brand.objects.exists()


def test_a_staff_user_without_a_role_gets_403_on_every_page(client):
    template = _template()
    user = UserFactory(username="bare", is_superuser=False, is_staff=True)
    client.force_login(user)

    urls = [
        "/admin/messaging/templates/",
        f"/admin/messaging/templates/{template.pk}/",
        "/admin/messaging/brand/",
        "/admin/messaging/templates/choices/",
    ]
    assert [client.get(url).status_code for url in urls] == [403] * 4
    assert client.post(f"/admin/messaging/templates/{template.pk}/preview/", {"customer": "1"}).status_code == 403


def test_edit_saves_a_draft_publish_bumps_the_version_and_the_history_lists_both(client):
    template = _template()
    templates.template_publish(template=template)
    login(client, "marketer")

    saved = client.post(
        f"/admin/messaging/templates/{template.pk}/", {"locale": "pt-BR", "subject": "Olá", "body": "Oi"}
    )
    published = client.post(f"/admin/messaging/templates/{template.pk}/publish/")
    page = client.get(f"/admin/messaging/templates/{template.pk}/?locale=pt-br")

    assert saved.status_code == 302 and saved["Location"].endswith("?locale=pt-br")
    assert published.status_code == 302
    assert page.context["published"].number == 2
    assert [(v.number, v.variant_count) for v in page.context["history"]] == [(2, 2), (1, 1)]
    assert page.context["locales"] == ["en", "pt-br"]
    assert page.context["form"].initial["body"] == "Oi"
    assert AuditEntry.objects.filter(action="published", object_id=str(template.pk)).count() == 2


def test_preview_of_the_published_version_is_byte_for_byte_what_render_for_sends(client):
    template = _template()
    templates.template_publish(template=template)
    customer = CustomerFactory(first_name="Ana", email="ana@example.com")
    login(client, "marketer")

    response = client.post(
        f"/admin/messaging/templates/{template.pk}/preview/", {"customer": "ana@example.com", "version": "draft"}
    )

    sent = render_for("welcome", customer, channel="email", context={})
    assert response.status_code == 200
    assert response.content.decode() == sent.html
    # Framed by this site only, the message's inline styles allowed and no script.
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_live_preview_renders_unsaved_text_and_reports_bad_variables_with_the_path(client):
    template = _template()
    customer = CustomerFactory(first_name="Ana")
    login(client, "marketer")
    url = f"/admin/messaging/templates/{template.pk}/preview/"

    live = client.post(
        url,
        {
            "customer": customer.pk,
            "locale": "en",
            "subject": "Yo {{ customer.first_name }}",
            "body": "Unsaved",
            "format": "json",
        },
    )
    bad = client.post(url, {"customer": customer.pk, "subject": "x", "body": "{{ nope.x }}", "format": "json"})
    nobody = client.post(url, {"customer": "999999", "format": "json"})

    assert live.status_code == 200
    assert (live.json()["subject"], live.json()["locale"]) == ("Yo Ana", "en")
    assert "<p>Unsaved</p>" in live.json()["html"]
    assert bad.status_code == 400 and bad.json()["errors"] == [{"path": "body", "message": 'unknown variable "nope.x"'}]
    assert nobody.status_code == 400 and nobody.json()["errors"][0]["path"] == "customer"
    assert TemplateVariant.objects.get().body == "Hello **{{ customer.first_name }}**"


def test_preview_needs_the_customer_view_permission(client):
    template = _template()
    user = UserFactory(username="tpl-only", is_superuser=False, is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_messagetemplate"))
    client.force_login(user)

    response = client.post(f"/admin/messaging/templates/{template.pk}/preview/", {"customer": CustomerFactory().pk})
    assert response.status_code == 403


def test_send_a_test_to_yourself_mails_the_draft_rendered_for_the_customer_with_html_and_text(client):
    template = _template()
    customer = CustomerFactory(first_name="Ana")
    templates.brand_update(fields={"name": "Acme", "sender_name": "Acme Club", "sender_email": "club@acme.test"})
    login(client, "marketer", email="me@acme.test")

    response = client.post(
        f"/admin/messaging/templates/{template.pk}/send-test/", {"customer": customer.pk, "locale": ""}
    )

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert (message.to, message.subject, message.from_email) == (
        ["me@acme.test"],
        "[Test] Hi Ana",
        "Acme Club <club@acme.test>",
    )
    assert "Hello Ana" in message.body
    html, kind = message.alternatives[0]
    assert kind == "text/html" and "<strong>Ana</strong>" in html and "Acme" in html


def test_brand_is_saved_audited_and_an_uploaded_logo_is_served_and_used_in_emails(client):
    login(client, "marketer")
    fields = {
        "name": "Acme",
        "primary_colour": "#ff0000",
        "text_colour": "#111111",
        "background_colour": "#eeeeee",
        "font_family": "Georgia, serif",
        "footer_text": "Acme Ltd, 1 Road",
        "sender_name": "Acme",
        "sender_email": "hi@acme.test",
        "logo_url": "",
    }
    from django.core.files.uploadedfile import SimpleUploadedFile

    saved = client.post("/admin/messaging/brand/", {**fields, "logo": SimpleUploadedFile("logo.png", PNG)})
    brand = get_brand()
    from apps.customers.messaging.templating.brand import brand_logo_url

    logo = client.get(brand_logo_url(brand).split("8000", 1)[1])
    templates.template_publish(template=_template())
    html = render_for("welcome", CustomerFactory(), channel="email", context={}).html

    assert saved.status_code == 302
    assert (brand.name, brand.primary_colour, brand.logo_content_type) == ("Acme", "#ff0000", "image/png")
    assert logo.status_code == 200 and logo.content == PNG and logo["Content-Type"] == "image/png"
    assert brand_logo_url(brand) in html and "Acme Ltd, 1 Road" in html and "#ff0000" in html
    entry = AuditEntry.objects.get(object_type="customers.brand")
    assert entry.changes["name"] == {"old": None, "new": "Acme"}
    assert entry.changes["logo"] == {"old": "0 bytes", "new": f"{len(PNG)} bytes"}


@pytest.mark.parametrize(
    ("upload", "message"),
    [(b"<svg onload=alert(1)>", "a PNG, JPEG or GIF image"), (PNG + b"\x00" * 300_000, "at most 256 KB")],
)
def test_a_bad_logo_is_refused_and_nothing_changes(client, upload, message):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(client, "marketer")
    response = client.post(
        "/admin/messaging/brand/",
        {
            "name": "Acme",
            "primary_colour": "#ff0000",
            "text_colour": "#111111",
            "background_colour": "#eeeeee",
            "font_family": "Arial",
            "logo": SimpleUploadedFile("logo.png", upload),
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["logo"] == [message]
    assert not Brand.objects.exists()


def test_template_choices_lists_published_templates_of_a_channel(client):
    templates.template_publish(template=_template())
    _template(key="draft-only", name="Draft only")
    _template(key="sms-one", name="SMS", channel="sms", subject="")
    templates.template_publish(template=MessageTemplate.objects.get(key="sms-one"))
    login(client, "marketer")

    email = client.get("/admin/messaging/templates/choices/?channel=email").json()
    everything = client.get("/admin/messaging/templates/choices/").json()

    assert email == {"templates": [{"key": "welcome", "name": "Welcome", "channel": "email"}]}
    assert sorted(row["key"] for row in everything["templates"]) == ["sms-one", "welcome"]


def test_template_list_costs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    for index in range(5):
        templates.template_publish(template=_template(key=f"t{index}", name=f"T{index}"))
    login(client, "marketer")
    client.get("/admin/messaging/templates/")  # warm the session and permission caches

    with django_assert_max_num_queries(8):
        response = client.get("/admin/messaging/templates/")
    assert len(response.context["templates"]) == 5
