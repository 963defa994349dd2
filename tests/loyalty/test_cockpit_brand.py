"""The customer cockpit is drawn with the Brand shared with e-mails and landing pages."""

import pytest

from apps.customers.messaging.templating.models import Brand
from apps.loyalty import services
from apps.loyalty.cockpit import cockpit_path
from loyalty_site.lib.colour import readable_on
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    membership, _ = services.member_join(customer=CustomerFactory(first_name="Ada"), program=program_make())
    return membership


def test_the_cockpit_uses_the_saved_brand_with_readable_button_text(client, member):
    Brand.objects.create(
        name="Acme Coffee",
        logo_url="https://cdn.example.com/acme.png",
        primary_colour="#ffd43b",
        font_family="Georgia, serif",
    )

    html = client.get(cockpit_path(member)).content.decode()

    assert "--accent: #ffd43b; --on-accent: #000000;" in html  # black on yellow: the higher WCAG contrast
    assert "--font: Georgia, serif;" in html
    assert 'src="https://cdn.example.com/acme.png" alt="Acme Coffee"' in html


def test_without_a_saved_brand_the_cockpit_shows_the_brand_defaults(client, member):
    html = client.get(cockpit_path(member)).content.decode()

    default = Brand().primary_colour
    assert f"--accent: {default}; --on-accent: {readable_on(default)};" in html
    assert f'<span class="brand-name">{Brand().name}</span>' in html
    assert Brand.objects.count() == 0  # reading the brand writes nothing
