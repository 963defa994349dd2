"""
Landing pages and the storefront widget in Chromium: a marketer builds and publishes a page in the console, a
visitor signs up on a 390 px phone and confirms by the e-mail link from the test outbox, and a shop page served
from another origin on 127.0.0.1 shows the widget and redeems a reward. Screenshots at 1440 and 390 px.
"""

import functools
import re
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from apps.campaigns.landing.models import FormSubmission, LandingPage
from apps.customers.messaging.templating.services import brand_update
from apps.customers.models import Customer
from apps.loyalty import services as loyalty_services
from apps.loyalty.models import Membership, Redemption, Reward, Tier
from apps.loyalty.widget.tokens import widget_token
from loyalty_site.settings.security import PRODUCTION_CONTENT_SECURITY_POLICY
from tests.campaigns.landing_helpers import form_block, published_page
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("cache_cleared")]
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_marketer_builds_and_publishes_a_landing_page(logged_in, live_server, screenshot):
    program_make(name="Coffee Club")
    page = logged_in
    page.goto(live_server.url + "/admin/campaigns/landing/")
    page.get_by_test_id("landing-new").click()
    page.get_by_label("Title").fill("Spring club")
    page.get_by_label("Slug").fill("spring")
    page.get_by_label("Template").select_option("loyalty")
    with page.expect_navigation():  # the new page's form posts and lands on the editor (also titled "Title")
        page.get_by_role("button", name="Create page").click()

    page.get_by_label("Title", exact=True).first.fill("Spring into rewards")
    page.get_by_label("Add a block").select_option("faq")
    with page.expect_navigation():
        page.get_by_role("button", name="Add block").click()
    page.get_by_label("Question 2").fill("Is it free?")
    page.get_by_label("Answer 2").fill("Yes, always.")
    faq = page.locator("[data-testid^=block-]").count() - 1
    # Each move is a form post that reloads the editor: wait for the reload, or the next step
    # races the navigation (the document can be briefly empty).
    with page.expect_navigation():
        page.get_by_role("button", name=f"Move block {faq + 1} up").click()  # above the footer
    with page.expect_navigation():
        page.get_by_role("button", name=f"Move block {faq} up").click()  # above the form
    page.wait_for_load_state()
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_OVERFLOW), f"editor overflows at {width} px"
        screenshot(f"landing_editor_{width}")
    with page.expect_navigation():
        page.get_by_test_id("landing-publish").click()
    page.wait_for_selector("text=Published version 1")

    stored = LandingPage.objects.get(slug="spring")
    assert stored.blocks[0]["title"] == "Spring into rewards"
    assert [block["type"] for block in stored.blocks][-3:] == ["faq", "form", "footer"]
    assert stored.blocks[-3]["items"][-1] == {"question": "Is it free?", "answer": "Yes, always."}
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + "/p/spring/")
        assert page.get_by_role("heading", level=1).inner_text() == "Spring into rewards"
        assert page.locator("main").count() == 1 and page.get_by_role("textbox", name="E-mail").is_visible()
        assert page.evaluate(NO_OVERFLOW), f"landing page overflows at {width} px"
        screenshot(f"landing_page_{width}")


def test_a_visitor_signs_up_on_a_phone_and_confirms_by_the_e_mail_link(browser, live_server, settings, screenshot):
    settings.TASKS_SYNC = True
    settings.LANDING_FORM_MIN_SECONDS = 1
    program_make(name="Coffee Club")
    published_page(
        blocks=[
            {"type": "hero", "title": "Join the club", "text": "Points on every coffee."},
            form_block(),
            {"type": "footer", "text": "Coffee Club Ltd", "links": []},
        ]
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        phone.goto(live_server.url + "/p/newsletter/")
        assert phone.evaluate(NO_OVERFLOW)
        screenshot("landing_signup_390", phone)
        phone.get_by_role("textbox", name="E-mail").fill("ada@example.com")
        phone.get_by_label("First name").fill("Ada")
        phone.get_by_label("E-mail: Send me offers.").check()
        phone.wait_for_timeout(1100)  # a person takes longer than the minimum fill time
        with phone.expect_navigation():
            phone.get_by_role("button", name="Sign up").click()
        phone.get_by_test_id("form-sent").wait_for()
        assert phone.evaluate(NO_OVERFLOW)
        screenshot("landing_signup_sent_390", phone)

        link = re.search(r"https?://[^/\s]+(/c/[^\s]+/)", mail.outbox[-1].body).group(1)
        phone.goto(live_server.url + link)
        with phone.expect_navigation():
            phone.get_by_role("button").first.click()
        phone.wait_for_load_state()
        screenshot("landing_confirmed_390", phone)
    finally:
        context.close()

    customer = Customer.objects.get(email="ada@example.com")
    assert FormSubmission.objects.get(customer=customer).status == "confirmed"
    assert Membership.objects.filter(customer=customer).count() == 1


def test_a_marketer_uploads_a_hero_image_and_visitors_see_it(logged_in, live_server, settings, tmp_path, screenshot):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.CONTENT_SECURITY_POLICY = PRODUCTION_CONTENT_SECURITY_POLICY
    page_row = published_page(blocks=[{"type": "hero", "title": "Spring sale", "text": "Blossoms and coffee."}])
    photo = tmp_path / "blossom.jpg"
    Image.new("RGB", (1200, 600), (230, 120, 160)).save(photo, "JPEG")
    page = logged_in
    page.goto(f"{live_server.url}/admin/campaigns/landing/{page_row.pk}/")
    page.get_by_label("Upload an image").set_input_files(str(photo))
    page.get_by_label("Image description for screen readers").fill("Pink blossoms")
    with page.expect_navigation():
        page.get_by_test_id("landing-publish").click()
    expect(page.get_by_text("Published version 2")).to_be_visible()
    thumb = page.get_by_test_id("b-0-image_url-thumb")
    expect(thumb).to_be_visible()
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_OVERFLOW), f"the editor overflows at {width} px"
        screenshot(f"landing_upload_editor_{width}")

    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + "/p/newsletter/")
        hero = page.get_by_role("img", name="Pink blossoms")
        expect(hero).to_be_visible()
        assert hero.evaluate("node => node.complete && node.naturalWidth") == 1200  # served, decoded by the browser
        assert hero.get_attribute("src").startswith("/media/landing/")
        assert page.evaluate(NO_OVERFLOW), f"the page overflows at {width} px"
        screenshot(f"landing_upload_page_{width}")


COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_countdown_ticks_live_under_the_csp_and_shows_the_ended_state_at_zero(
    browser, live_server, settings, screenshot
):
    settings.CONTENT_SECURITY_POLICY = PRODUCTION_CONTENT_SECURITY_POLICY
    campaign = campaign_with(
        "Flash sale",
        incentives=[{"kind": "percent_order", "percent": Decimal("10")}],
        ends_at=timezone.now() + timedelta(days=1),
    )
    published_page(
        blocks=[
            {"type": "hero", "title": "Flash sale"},
            {"type": "countdown", "title": "Ends in", "campaign": campaign.pk, "ended_text": "The flash sale is over."},
        ]
    )

    # Without JavaScript: the server's text, the ended state hidden.
    still = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        plain = still.new_page()
        plain.goto(live_server.url + "/p/newsletter/")
        assert re.fullmatch(
            r"(1 day 0 h 0 min 0 s|0 days 23 h 59 min \d+ s) left", plain.get_by_test_id("countdown-count").inner_text()
        )
        assert not plain.get_by_test_id("countdown-ended").is_visible()
        screenshot("landing_countdown_nojs_390", plain)
    finally:
        still.close()

    # A near deadline: it ticks every second, stops at zero and shows the ended text.
    campaign.ends_at = timezone.now() + timedelta(seconds=6)
    campaign.save(update_fields=["ends_at"])
    for width in (1440, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        try:
            page = context.new_page()
            page.add_init_script(COLLECT_VIOLATIONS)
            response = page.goto(live_server.url + "/p/newsletter/")
            assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
            count = page.get_by_test_id("countdown-count")
            block = page.get_by_test_id("countdown")
            if width == 1440:
                expect(block).to_have_attribute("data-state", "ticking")
                first = count.inner_text()
                assert re.fullmatch(r"0 days 0 h 0 min [1-6] s left", first), first
                expect(count).not_to_have_text(first, timeout=5000)  # the next second
                assert page.evaluate(NO_OVERFLOW)
                screenshot("landing_countdown_ticking_1440", page)
            expect(page.get_by_test_id("countdown-ended")).to_have_text("The flash sale is over.", timeout=15000)
            expect(page.get_by_test_id("countdown-ended")).to_be_visible()
            expect(block).to_have_attribute("data-state", "ended")
            assert not count.is_visible()
            assert page.evaluate(NO_OVERFLOW), f"the countdown page overflows at {width} px"
            assert page.evaluate("window.__cspViolations") == []
            screenshot(f"landing_countdown_ended_{width}", page)
        finally:
            context.close()
        campaign.ends_at = timezone.now() + timedelta(seconds=3)
        campaign.save(update_fields=["ends_at"])


@pytest.fixture
def shop_page(tmp_path, live_server):
    """A static shop page served from another origin (127.0.0.1, its own port) with the widget's snippet."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def write(snippet: str, lang: str = "en") -> str:
        (tmp_path / "index.html").write_text(
            f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Shop</title></head>"
            "<body><header><h1>The Coffee Shop</h1></header><main><p>Beans, mugs and grinders.</p></main>"
            f"{snippet}</body></html>"
        )
        return f"http://127.0.0.1:{server.server_address[1]}/index.html"

    yield write, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_the_widget_on_a_shop_page_shows_the_member_and_redeems_with_confirmation(
    page, live_server, settings, shop_page, screenshot
):
    write, origin = shop_page
    settings.LOYALTY_WIDGET_ALLOWED_ORIGINS = [origin]
    program = program_make(name="Coffee Club")
    Tier.objects.create(program=program, name="Silver", rank=1, threshold=0)
    Tier.objects.create(program=program, name="Gold", rank=2, threshold=500)
    membership, _ = loyalty_services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    loyalty_services.points_award(membership=membership, points=300, reason="welcome")
    Reward.objects.create(program=program, name="Espresso", kind="free_product", points_cost=120)
    Reward.objects.create(program=program, name="Grinder", kind="free_product", points_cost=900)
    token, _ = widget_token(membership)
    url = write(f'<script src="{live_server.url}/static/widget/loyalty-widget.js" data-token="{token}" async></script>')

    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 844})
        page.goto(url)
        launcher = page.get_by_test_id("widget-launcher")
        launcher.filter(has_text="300 points").wait_for()
        launcher.click()
        assert page.get_by_test_id("widget-balance").inner_text() == "300 points"
        assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "60"
        assert page.get_by_test_id("widget-referral").input_value().endswith(f"/me/r/{membership.referral_code}/")
        assert page.evaluate(NO_OVERFLOW), f"the shop page overflows at {width} px"
        screenshot(f"widget_{width}")

    page.get_by_test_id("widget-rewards").get_by_role("button", name="Redeem").first.click()
    assert Redemption.objects.count() == 0  # nothing before the confirmation
    page.get_by_test_id("widget-confirm").click()
    message = page.get_by_test_id("widget-message")
    message.wait_for()
    code = Redemption.objects.get().code
    assert message.inner_text() == f"Your code for Espresso: {code}"
    assert page.get_by_test_id("widget-balance").inner_text() == "180 points"
    screenshot("widget_redeemed_390")

    # From a shop origin that is not configured, the browser refuses the widget's calls (CORS): no launcher.
    settings.LOYALTY_WIDGET_ALLOWED_ORIGINS = ["https://another-shop.example"]
    with page.expect_event("console", predicate=lambda message: "Loyalty widget" in message.text):
        page.goto(url)
    assert page.locator("[data-loyalty-widget]").count() == 1
    expect(page.get_by_test_id("widget-launcher")).to_be_hidden()


def test_a_french_shop_page_shows_the_widget_in_french_in_the_brand(page, live_server, settings, shop_page, screenshot):
    write, origin = shop_page
    settings.LOYALTY_WIDGET_ALLOWED_ORIGINS = [origin]
    brand_update(fields={"name": "Café Club", "primary_colour": "#ffd43b", "text_colour": "#222222"})
    program = program_make(name="Club Café")
    Tier.objects.create(program=program, name="Argent", rank=1, threshold=0)
    Tier.objects.create(program=program, name="Or", rank=2, threshold=2000)
    membership, _ = loyalty_services.member_join(
        customer=CustomerFactory(first_name="Léa", language=""), program=program
    )
    loyalty_services.points_award(membership=membership, points=1200, reason="welcome")
    Reward.objects.create(program=program, name="Expresso", kind="free_product", points_cost=1)
    Reward.objects.create(program=program, name="Moulin", kind="free_product", points_cost=5000)
    token, _ = widget_token(membership)
    url = write(
        f'<script src="{live_server.url}/static/widget/loyalty-widget.js" data-token="{token}" async></script>', "fr"
    )

    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 844})
        page.goto(url)
        launcher = page.get_by_test_id("widget-launcher")
        expect(launcher).to_have_text("★ 1\u202f200 points")  # French digit grouping (Intl.NumberFormat)
        assert launcher.evaluate("node => getComputedStyle(node).backgroundColor") == "rgb(255, 212, 59)"
        assert launcher.evaluate("node => getComputedStyle(node).color") == "rgb(0, 0, 0)"  # readable on yellow
        launcher.click()
        rewards = page.get_by_test_id("widget-rewards")
        expect(rewards.get_by_role("button", name="Échanger")).to_have_count(2)
        assert rewards.locator("li").first.inner_text().startswith("Expresso · 1 point")  # French singular
        expect(page.get_by_text("Récompenses", exact=True)).to_be_visible()
        expect(page.get_by_test_id("widget-remaining")).to_have_text("Encore 800 points pour Or")
        assert page.get_by_role("progressbar").get_attribute("aria-label") == "Progression vers Or"
        assert page.get_by_role("dialog").get_attribute("aria-label") == "Vos récompenses"
        assert page.get_by_test_id("widget-referral").get_attribute("aria-label") == "Votre lien de parrainage"
        assert page.evaluate(NO_OVERFLOW), f"the French shop page overflows at {width} px"
        screenshot(f"widget_fr_{width}")

    rewards.get_by_role("button", name="Échanger").first.click()
    expect(page.get_by_text("Échanger Expresso contre 1 point\u00a0?")).to_be_visible()
    page.get_by_test_id("widget-confirm").click()
    code = page.get_by_test_id("widget-message")
    expect(code).to_contain_text("Votre code pour Expresso\u00a0: ")
    assert code.inner_text().endswith(Redemption.objects.get().code)
    screenshot("widget_fr_redeemed_390")
