"""Landing pages: blocks validated on save with paths, draft / published versions, the public page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.campaigns.landing import services
from apps.campaigns.landing.blocks import SCHEMAS, template_blocks
from apps.campaigns.landing.models import LandingPage, LandingPageVersion
from apps.loyalty.models import Reward, Tier
from apps.platform.models import AuditEntry
from tests.campaigns.landing_helpers import form_block, published_page
from tests.campaigns.promo_helpers import campaign_with
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

EVERY_BLOCK = [
    {
        "type": "hero",
        "title": "Join the club",
        "text": "Earn points.",
        "image_url": "https://cdn.example.com/h.jpg",
        "image_alt": "A smiling barista",
        "button_label": "Join",
        "button_url": "#signup",
    },
    {"type": "how_to_earn", "title": "How to earn", "text": ""},
    {"type": "rewards", "title": "Rewards", "limit": 2},
    {"type": "tiers", "title": "Tiers"},
    {"type": "referral", "title": "Invite friends", "text": ""},
    form_block(),
    {"type": "faq", "title": "FAQ", "items": [{"question": "Is it free?", "answer": "Yes."}]},
    {"type": "footer", "text": "Coffee Club Ltd", "links": [{"label": "Privacy", "url": "/privacy/"}]},
]


def test_every_block_type_has_a_schema_and_a_page_with_all_of_them_round_trips(client):
    program = program_make(name="Coffee Club", referrer_bonus=50, referee_bonus=25)
    Tier.objects.create(program=program, name="Gold", rank=2, threshold=500)
    Tier.objects.create(program=program, name="Silver", rank=1, threshold=0)
    for cost, name in ((100, "Espresso"), (300, "Mug"), (900, "Grinder")):
        Reward.objects.create(program=program, name=name, kind="free_product", points_cost=cost)
    campaign = campaign_with(
        "Winter sale",
        incentives=[{"kind": "percent_order", "percent": Decimal("10")}],
        ends_at=timezone.now() + timedelta(days=2, hours=3),
    )
    blocks = [*EVERY_BLOCK[:6], {"type": "countdown", "title": "Ends in", "campaign": campaign.pk}, *EVERY_BLOCK[6:]]
    assert {block["type"] for block in blocks} == set(SCHEMAS)

    page = services.landing_page_save(slug="club", title="Coffee Club", template="loyalty", blocks=blocks)
    version = services.landing_page_publish(page=page)

    page.refresh_from_db()
    assert (page.blocks, version.blocks, version.number, page.status) == (blocks, blocks, 1, "published")
    html = client.get("/p/club/").content.decode()
    for shown in (
        "Join the club",
        "Espresso",
        "Mug",
        "Gold",
        "Silver",
        "Is it free?",
        "Coffee Club Ltd",
        "50 points</strong> for each friend",
        '2</span> <span data-label="days" data-one="day" data-many="days">days</span>',
        'for="id_email"',
        'name="website"',
    ):
        assert shown in html, shown
    assert "Grinder" not in html  # the rewards block shows 2
    assert html.count("<main") == 1 and "<header" in html and "<footer" in html


@pytest.mark.parametrize(
    ("blocks", "path"),
    [
        ([{"type": "hero"}], "blocks[0].title"),
        ([{"type": "carousel"}], "blocks[0].type"),
        ([{"type": "hero", "title": "x", "button_url": "javascript:alert(1)"}], "blocks[0].button_url"),
        ([{"type": "faq", "items": [{"question": "Q?", "answer": ""}]}], "blocks[0].items[0].answer"),
        ([form_block(fields=[{"name": "password", "label": "Password"}])], "blocks[0].fields[0].name"),
        ([form_block(fields=[{"name": "first_name", "label": "Name"}])], "blocks[0].fields"),
        ([form_block(consent_channels=["sms"])], "blocks[0].consent_channels"),
        ([form_block(join_program=False, fields=[{"name": "email", "label": "E"}])], "blocks[0].consent_channels"),
        ([form_block(), form_block()], "blocks[1].type"),
        ([form_block(voucher_campaign=999)], "blocks[0].voucher_campaign"),
        ([{"type": "countdown", "campaign": 999}], "blocks[0].campaign"),
        ([{"type": "hero", "title": "x", "colour": "red"}], "blocks[0]"),
        ([{"type": "rewards", "limit": 500}], "blocks[0].limit"),
    ],
)
def test_invalid_blocks_are_refused_with_their_path_and_nothing_is_written(blocks, path):
    with pytest.raises(ValidationError) as refused:
        services.landing_page_save(slug="bad", title="Bad", blocks=blocks)

    assert path in refused.value.message_dict, refused.value.message_dict
    assert not LandingPage.objects.exclude(slug="invite").exists() and AuditEntry.objects.count() == 0


def test_oversized_pages_and_bad_slugs_are_refused_before_anything_walks_the_blocks():
    huge = [{"type": "faq", "items": [{"question": "q" * 150, "answer": "a" * 1900}] * 30}] * 2
    with pytest.raises(ValidationError) as refused:
        services.landing_page_save(slug="big", title="Big", blocks=huge)
    assert "too large" in refused.value.message_dict["blocks"][0]
    for slug in ("Admin", "admin", "-x", "a b", ""):
        with pytest.raises(ValidationError) as refused:
            services.landing_page_save(slug=slug, title="T", blocks=[])
        assert "slug" in refused.value.message_dict


def test_drafts_are_not_served_and_publishing_freezes_a_new_version(client, django_user_model):
    marketer = django_user_model.objects.create_user("m", password="x")
    page = published_page(user=marketer)
    services.landing_page_save(
        page=page,
        slug="newsletter",
        title="Newsletter",
        blocks=[{"type": "hero", "title": "Draft title only"}, form_block()],
        user=marketer,
    )

    assert "Get 5 % off" in client.get("/p/newsletter/").content.decode()  # visitors still see version 1
    assert "Draft title only" not in client.get("/p/newsletter/").content.decode()
    services.landing_page_publish(page=page, user=marketer)
    assert "Draft title only" in client.get("/p/newsletter/").content.decode()
    assert list(LandingPageVersion.objects.filter(page=page).values_list("number", flat=True)) == [2, 1]
    assert list(AuditEntry.objects.filter(object_id=str(page.pk)).values_list("action", flat=True).order_by("pk")) == [
        "created",
        "published",
        "changed",
        "published",
    ]

    services.landing_page_unpublish(page=page, user=marketer)
    assert client.get("/p/newsletter/").status_code == 404
    assert client.get("/p/unknown/").status_code == 404


def test_the_page_is_drawn_with_the_shared_brand_and_readable_button_text(client):
    from apps.customers.messaging.templating.models import Brand

    Brand.objects.create(
        name="Coffee Club",
        logo_url="https://cdn.example.com/logo.png",
        primary_colour="#ffd43b",
        font_family="Georgia, serif",
    )
    published_page()

    html = client.get("/p/newsletter/").content.decode()
    assert 'src="https://cdn.example.com/logo.png" alt="Coffee Club"' in html
    assert "--brand: #ffd43b; --on-brand: #000000;" in html  # black on yellow: the WCAG contrast is higher
    assert "--font: Georgia, serif;" in html


def test_templates_give_valid_pages():
    for template in ("signup", "loyalty", "referral", "blank"):
        page = services.landing_page_save(
            slug=f"t-{template}", title="T", template=template, blocks=template_blocks(template)
        )
        assert services.landing_page_publish(page=page).number == 1


def test_the_public_page_takes_a_fixed_number_of_queries(client, django_assert_num_queries):
    program = program_make()
    for index in range(20):
        Reward.objects.create(program=program, name=f"Reward {index}", kind="free_product", points_cost=10 + index)
        Tier.objects.create(program=program, name=f"Tier {index}", rank=index, threshold=index * 100)
    published_page(blocks=[*EVERY_BLOCK])

    # page + version, brand, program, rules, tiers, rewards: the same 6 whatever the number of tiers and rewards
    with django_assert_num_queries(6):
        response = client.get("/p/newsletter/")
    html = response.content.decode()
    assert response.status_code == 200
    assert ("Tier 19" in html, "Reward 1<" in html, "Reward 2<" in html) == (True, True, False)
