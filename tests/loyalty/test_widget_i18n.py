"""The storefront widget speaks the visitor's language (JSON catalogs en/fr/de/es) and wears the shop's Brand."""

import re

import pytest

from apps.customers.messaging.templating.services import brand_update
from apps.loyalty import services
from apps.loyalty.models import Tier
from apps.loyalty.widget.i18n import LANGUAGES, accepted, widget_catalog, widget_language
from apps.loyalty.widget.tokens import widget_token
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db
SHOP = "https://shop.example.com"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@pytest.fixture(autouse=True)
def shop_origin(settings):
    settings.LOYALTY_WIDGET_ALLOWED_ORIGINS = [SHOP]


@pytest.fixture
def member():
    program = program_make(name="Coffee Club")
    Tier.objects.create(program=program, name="Silver", rank=1, threshold=0)
    Tier.objects.create(program=program, name="Gold", rank=2, threshold=500)
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada", language=""), program=program)
    return membership


def _state(client, token: str, query: str = "", **headers):
    return client.get(f"/w/api/state/{query}", HTTP_ORIGIN=SHOP, HTTP_X_LOYALTY_WIDGET_TOKEN=token, **headers)


def test_a_french_shop_page_gets_the_french_texts(client, member):
    token, _ = widget_token(member)

    answer = _state(client, token, "?lang=&page_lang=fr-FR", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    body = answer.json()
    assert (answer.status_code, body["lang"], answer["Content-Language"]) == (200, "fr", "fr")
    assert answer["Vary"] == "Origin, Accept-Language"
    assert (body["strings"]["redeem"], body["strings"]["rewards"], body["strings"]["invite"]) == (
        "Échanger",
        "Récompenses",
        "Invitez un ami",
    )
    assert body["strings"] == widget_catalog("fr")


@pytest.mark.parametrize(
    ("chosen", "customer", "page", "accept", "expected"),
    [
        ("es", "de", "fr", "en", "es"),  # the snippet's data-lang wins
        ("", "de-AT", "fr", "en", "de"),  # then the customer's language
        ("", "", "fr", "de", "fr"),  # then the shop page's <html lang>
        ("", "", "", "pt-BR, es;q=0.8, de;q=0.9", "de"),  # then the browser's best supported language
        ("", "ja", "zz", "it, pt", "en"),  # nothing supported: English
        ("x" * 500, "", "", "fr;q=0, es;q=0.1", "es"),  # q=0 means "not this one"; garbage is ignored
        ("", "fr_CA", "", "", "fr"),
    ],
)
def test_the_language_order_is_snippet_customer_page_browser_english(chosen, customer, page, accept, expected):
    assert widget_language(chosen=chosen, customer=customer, page=page, accept_language=accept) == expected


def test_the_customer_language_is_read_from_the_token_customer(client, member):
    member.customer.language = "es"
    member.customer.save(update_fields=["language"])
    token, _ = widget_token(member)

    body = _state(client, token, "?page_lang=fr").json()

    assert (body["lang"], body["strings"]["redeem"]) == ("es", "Canjear")


def test_accept_language_is_bounded_and_ordered_by_quality():
    assert accepted("de;q=0.5, fr, es;q=0.9") == ["fr", "es", "de"]
    assert accepted("fr;q=abc, de") == ["de"]
    assert len(accepted("fr," * 10_000)) == 20  # read up to 256 bytes and 20 entries


def test_every_catalog_has_the_english_keys_and_the_same_placeholders():
    english = widget_catalog("en")
    for language in LANGUAGES:
        catalog = widget_catalog(language)
        assert set(catalog) == set(english), language
        assert set(catalog["errors"]) == set(english["errors"]), language
        for key, text in english.items():
            if isinstance(text, str):
                assert set(PLACEHOLDER.findall(catalog[key])) == set(PLACEHOLDER.findall(text)), (language, key)
        assert catalog["plural_one"] == ([0, 1] if language == "fr" else [1])
    assert widget_catalog("xx") == english


def test_the_state_carries_the_shared_brand_with_a_readable_button_text(client, member):
    brand_update(
        fields={
            "name": "Beans & Co",
            "primary_colour": "#ffd43b",
            "text_colour": "#222222",
            "background_colour": "#fffdf5",
            "font_family": "Georgia, serif",
            "logo_url": "https://cdn.example.com/logo.png",
        }
    )
    token, _ = widget_token(member)

    assert _state(client, token).json()["brand"] == {
        "name": "Beans & Co",
        "logo_url": "https://cdn.example.com/logo.png",
        "primary": "#ffd43b",
        "on_primary": "#000000",  # black on yellow: the higher WCAG contrast
        "background": "#fffdf5",
        "text": "#222222",
        "font": "Georgia, serif",
    }


def test_a_refused_token_still_answers_in_the_visitor_language(client, member):
    answer = _state(client, "forged", "?page_lang=de")

    body = answer.json()
    assert (answer.status_code, body["error"], body["lang"]) == (401, "invalid_token", "de")
    assert body["strings"]["errors"]["invalid_token"] == "Ihre Sitzung ist abgelaufen: Laden Sie die Seite neu."
    assert "customer" not in body and "brand" not in body
