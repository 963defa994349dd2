"""Message templates: validation at save, locale variants, immutable versions, render_for."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.customers.consent import services as consent
from apps.customers.messaging.templating import UNSUBSCRIBE_URL_PLACEHOLDER, render_for
from apps.customers.messaging.templating import services as templates
from apps.customers.messaging.templating.locales import locale_choose
from apps.customers.messaging.templating.models import MessageTemplate, TemplateVariant, TemplateVersion
from apps.loyalty.services import member_join, points_award
from loyalty_site.lib.errors import DomainError
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

from .support import template_published

pytestmark = pytest.mark.django_db


def _email(key: str = "welcome", **fields) -> MessageTemplate:
    values = {
        "key": key,
        "name": "Welcome",
        "channel": "email",
        "purpose": "marketing",
        "subject": "Hi {{ customer.first_name }}",
        "body": "You have **{{ loyalty.balance }}** points. Code: {{ voucher.code }}",
    }
    values.update(fields)
    return templates.template_create(**values)


def test_render_for_fills_catalog_variables_from_customer_loyalty_and_run_context():
    program_make()
    customer = CustomerFactory(first_name="Ana", language="")
    membership, _ = member_join(customer=customer)
    points_award(membership=membership, points=120, reason="seed")
    template = _email()
    templates.template_publish(template=template)

    rendered = render_for("welcome", customer, channel="email", context={"payload": {"code": "WELCOME-7KQ2"}})

    assert rendered.subject == "Hi Ana"
    assert (rendered.template_id, rendered.version, rendered.locale) == (template.pk, 1, "en")
    assert "<strong>120</strong> points. Code: WELCOME-7KQ2" in rendered.html
    assert "You have 120 points. Code: WELCOME-7KQ2" in rendered.text
    # A marketing e-mail's footer links to the customer's signed one-click unsubscribe page.
    unsubscribe = consent.unsubscribe_url(customer, channel="email", purpose="marketing")
    assert f'href="{unsubscribe}"' in rendered.html
    assert f"Unsubscribe ({unsubscribe})" in rendered.text


def test_unknown_variable_is_refused_at_save_with_the_field_path_and_nothing_is_stored():
    with pytest.raises(ValidationError) as refused:
        _email(subject="Hi {{ customer.nickname }}", body="{{ customer.first_name }} {{ order.nope }}")

    assert refused.value.message_dict == {
        "subject": ['unknown variable "customer.nickname"'],
        "body": ['unknown variable "order.nope"'],
    }
    assert MessageTemplate.objects.count() == 0


def test_editing_a_locale_refuses_unknown_variables_and_keeps_the_draft():
    template = _email()
    with pytest.raises(ValidationError) as refused:
        templates.variant_save(template=template, locale="pt", subject="Olá", body="{{ customer.bogus }}")

    assert refused.value.message_dict == {"body": ['unknown variable "customer.bogus"']}
    assert list(TemplateVariant.objects.values_list("locale", flat=True)) == ["en"]


def test_values_cannot_inject_markup_into_the_html():
    customer = CustomerFactory(first_name="<script>x</script> *bold*")
    templates.template_publish(
        template=_email(subject="{{ customer.first_name }}", body="Hello {{ customer.first_name }}")
    )

    rendered = render_for("welcome", customer, channel="email", context={})

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;x&lt;/script&gt; *bold*" in rendered.html
    assert rendered.subject == "<script>x</script> *bold*"  # a subject is text, escaped by the mail library


def test_publishing_freezes_a_version_and_editing_makes_a_new_draft():
    customer = CustomerFactory(first_name="Ana")
    template = _email(body="First")
    first = templates.template_publish(template=template)

    templates.variant_save(template=template, locale="en", subject="Hi", body="Second")
    # The published version is untouched until the draft is published.
    assert "First" in render_for("welcome", customer, channel="email", context={}).html
    second = templates.template_publish(template=template)
    rendered = render_for("welcome", customer, channel="email", context={})

    assert (first.number, second.number, rendered.version) == (1, 2, 2)
    assert "Second" in rendered.html
    assert TemplateVariant.objects.get(version=first).body == "First"
    assert TemplateVersion.objects.filter(template=template, status="draft").count() == 0


def test_nothing_to_publish_without_a_draft():
    template = _email()
    templates.template_publish(template=template)
    with pytest.raises(ValidationError) as refused:
        templates.template_publish(template=template)
    assert refused.value.message_dict == {"version": ["nothing to publish: the template has no draft"]}


@pytest.mark.parametrize(
    ("language", "expected"),
    [("pt-BR", "pt-br"), ("pt", "pt"), ("pt-PT", "pt"), ("de", "en"), ("", "en"), ("fr_CA", "fr-ca")],
)
def test_locale_variant_is_chosen_by_the_customer_language(language, expected):
    template = _email(subject="Hello", body="Hello")
    templates.variant_save(template=template, locale="pt", subject="Olá", body="Olá")
    templates.variant_save(template=template, locale="pt-BR", subject="Oi", body="Oi")
    templates.variant_save(template=template, locale="fr-CA", subject="Bonjour", body="Bonjour")
    templates.template_publish(template=template)
    customer = CustomerFactory(language=language)

    rendered = render_for("welcome", customer, channel="email", context={})

    assert rendered.locale == expected
    assert rendered.subject == {"pt-br": "Oi", "pt": "Olá", "en": "Hello", "fr-ca": "Bonjour"}[expected]


def test_locale_choose_prefers_another_variant_of_the_same_language_over_the_default():
    assert locale_choose("pt", ["en", "pt-br"], default="en") == "pt-br"
    assert locale_choose("zz-invalid", ["en"], default="en") == "en"


@pytest.mark.parametrize(
    ("key", "channel", "code"),
    [("missing", "email", "template_not_found"), ("welcome", "sms", "template_channel_mismatch")],
)
def test_render_for_refuses_unknown_key_and_wrong_channel(key, channel, code):
    templates.template_publish(template=_email())
    with pytest.raises(DomainError) as refused:
        render_for(key, CustomerFactory(), channel=channel, context={})
    assert (refused.value.code, refused.value.path) == (code, "template")


def test_render_for_refuses_a_template_never_published():
    _email()
    with pytest.raises(DomainError) as refused:
        render_for("welcome", CustomerFactory(), channel="email", context={})
    assert refused.value.code == "template_not_published"


def test_sms_renders_plain_text_and_in_app_renders_title_and_html():
    customer = CustomerFactory(first_name="Ana")
    template_published(
        "sms-hi", channel="sms", purpose="transactional", subject="", body="Hi {{ customer.first_name }} *"
    )
    template_published(
        "inbox-hi",
        channel="in_app",
        subject="For {{ customer.first_name }}",
        body="Hi [shop](https://shop.example.com)",
    )

    sms = render_for("sms-hi", customer, channel="sms", context={})
    inbox = render_for("inbox-hi", customer, channel="in_app", context={})

    assert (sms.subject, sms.text, sms.html) == ("", "Hi Ana *", "")
    assert inbox.subject == "For Ana"
    assert inbox.html == '<p>Hi <a href="https://shop.example.com">shop</a></p>\n'
    assert inbox.text == "Hi shop (https://shop.example.com)\n"


def test_sizes_are_capped_before_scanning():
    with pytest.raises(ValidationError) as refused:
        templates.template_create(
            key="long", name="Long", channel="sms", purpose="marketing", subject="", body="x" * 1601
        )
    assert refused.value.message_dict == {"body": ["at most 1600 characters"]}


def test_transactional_email_has_no_unsubscribe_link_and_the_text_alternative_is_generated():
    customer = CustomerFactory(first_name="Ana")
    templates.template_publish(
        template=_email(
            key="receipt",
            purpose="transactional",
            subject="Receipt",
            body="# Thanks\n\n- one\n- two\n\n[Shop](https://s.example)",
        )
    )

    rendered = render_for("receipt", customer, channel="email", context={})

    assert UNSUBSCRIBE_URL_PLACEHOLDER not in rendered.html
    assert "Unsubscribe" not in rendered.text
    assert "Thanks\n\n- one\n- two\n\nShop (https://s.example)" in rendered.text


def test_render_for_costs_a_fixed_number_of_queries(django_assert_num_queries):
    customer = CustomerFactory(first_name="Ana")
    templates.template_publish(template=_email(subject="Hi", body="Hello {{ customer.first_name }}"))
    # template, latest published version, its variants, the brand.
    with django_assert_num_queries(4):
        render_for("welcome", customer, channel="email", context={})


def test_a_prepared_template_renders_many_customers_without_reading_the_template_again(django_assert_num_queries):
    from apps.customers.messaging.templating import template_prepare

    customers = [CustomerFactory(first_name=f"N{index}") for index in range(5)]
    templates.template_publish(template=_email(subject="Hi {{ customer.first_name }}", body="Hello"))
    prepared = template_prepare("welcome", channel="email")

    with django_assert_num_queries(0):
        rendered = [prepared.render(customer, context={}) for customer in customers]

    assert [message.subject for message in rendered] == [f"Hi N{index}" for index in range(5)]
    assert {message.version for message in rendered} == {1}
