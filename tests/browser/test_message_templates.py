"""
Message templates in a real Chromium under the production CSP: set the brand, create a template, preview it
live for a customer (the framed message is the one sent), publish it, send a test to yourself (read back from
the test mail outbox); every page at 1440 and 390 px without horizontal overflow.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from playwright.sync_api import expect

from apps.customers.messaging.templating import render_for
from apps.customers.messaging.templating.models import MessageTemplate
from loyalty_site.settings.security import PRODUCTION_CONTENT_SECURITY_POLICY
from tests.factories import CustomerFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_brand_template_live_preview_publish_and_test_send(live_server, page, screenshot, settings):
    settings.CONTENT_SECURITY_POLICY = PRODUCTION_CONTENT_SECURITY_POLICY
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    customer = CustomerFactory(first_name="Ana", email="ana@example.com", language="pt-BR")
    marketer = UserFactory(username="mia", email="mia@example.com", is_staff=True, is_superuser=False)
    marketer.groups.add(Group.objects.get(name="marketer"))
    page.add_init_script(COLLECT_VIOLATIONS)
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill("mia")
    page.get_by_label("Password").fill("pass12345")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")

    # The brand, through the console navigation.
    page.get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="Brand").click()
    page.get_by_label("Name:", exact=True).fill("Acme Coffee")
    page.get_by_label("Footer text").fill("Acme Coffee, 1 Bean Street")
    page.get_by_label("Sender name").fill("Acme Club")
    page.get_by_label("Sender email").fill("club@acme.test")
    # The form posts back to its own address: wait for that navigation (a wait for the URL returns at once).
    with page.expect_navigation():
        page.get_by_test_id("brand-save").click()
    expect(page.get_by_test_id("brand-sample")).to_have_text("Acme Coffee")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"brand-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})

    # A new template; an unknown variable is refused at its field first.
    page.goto(live_server.url + "/admin/messaging/templates/")
    page.get_by_test_id("template-add").click()
    page.get_by_label("Key").fill("welcome")
    page.get_by_label("Name").fill("Welcome")
    page.get_by_label("Subject").fill("Welcome {{ customer.first_name }}")
    page.get_by_label("Body").fill("Hello **{{ customer.nickname }}**")
    page.get_by_test_id("template-create").click()
    expect(page.locator(".errorlist").first).to_contain_text('unknown variable "customer.nickname"')
    page.get_by_label("Body").fill("Hello **{{ customer.first_name }}**, you have {{ loyalty.balance }} points.")
    with page.expect_navigation():  # the post, then the redirect to the new template's page
        page.get_by_test_id("template-create").click()
    template = MessageTemplate.objects.get(key="welcome")
    page.wait_for_url(f"**/admin/messaging/templates/{template.pk}/")

    # Live preview for a chosen customer: typing re-renders the framed message.
    page.get_by_test_id("preview-customer").fill("ana@example.com")
    frame = page.frame_locator("iframe[name=msg-preview-frame]")
    frame.locator("text=Hello Ana, you have 0 points.").wait_for()
    assert page.get_by_test_id("preview-subject").inner_text() == "Subject: Welcome Ana · en"
    page.get_by_label("Body").fill("Olá **{{ customer.first_name }}**!")
    frame.locator("text=Olá Ana!").wait_for()
    assert frame.locator("text=Acme Coffee, 1 Bean Street").is_visible()
    page.get_by_label("Body").fill("Hello **{{ customer.first_name }}**, you have {{ loyalty.balance }} points.")
    frame.locator("text=Hello Ana, you have 0 points.").wait_for()

    # A pt-br variant in its own tab, then publish.
    page.get_by_label("Add a locale").fill("pt-br")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_label("Subject").fill("Bem-vinda {{ customer.first_name }}")
    page.get_by_label("Body").fill("Olá **{{ customer.first_name }}**!")
    page.get_by_test_id("save-draft").click()
    page.wait_for_url("**?locale=pt-br")
    assert page.get_by_test_id("locale-tabs").locator("a").all_inner_texts() == ["en (default)", "pt-br"]
    page.get_by_test_id("publish").click()
    expect(page.get_by_test_id("published-version")).to_have_text("v1")  # waits for the publish reply
    assert page.get_by_test_id("version-history").locator("tbody tr").count() == 1

    # The published message, as sent, is what the preview frames (Ana reads Portuguese).
    page.get_by_test_id("locale-tabs").get_by_role("link", name="pt-br").click()
    page.get_by_test_id("preview-customer").fill("ana@example.com")
    frame.locator("text=Olá Ana!").wait_for()
    sent = render_for("welcome", customer, channel="email", context={})
    assert (sent.subject, sent.locale, sent.version) == ("Bem-vinda Ana", "pt-br", 1)

    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        preview = page.get_by_test_id("preview-frame")
        preview.scroll_into_view_if_needed()
        assert frame.locator("text=Olá Ana!").is_visible()
        preview.screenshot(path=screenshot(f"template-edit-{width}").replace(".png", "-preview.png"))
    page.set_viewport_size({"width": 1440, "height": 900})

    # Send a test to yourself: it arrives in the outbox, rendered for Ana, from the brand's sender.
    with page.expect_navigation():
        page.get_by_test_id("send-test").click()
    expect(page.locator(".messagelist")).to_contain_text("Test sent to mia@example.com")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert (message.to, message.subject, message.from_email) == (
        ["mia@example.com"],
        "[Test] Bem-vinda Ana",
        "Acme Club <club@acme.test>",
    )
    assert "Olá Ana!" in message.body
    html, _kind = message.alternatives[0]
    assert "<strong>Ana</strong>" in html and "Acme Coffee" in html

    page.goto(live_server.url + "/admin/messaging/templates/")
    assert page.get_by_test_id("template-list").locator("tbody tr").first.inner_text().split("\t")[:2] == [
        "Welcome",
        "welcome",
    ]
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"template-list-{width}")
    assert page.evaluate("window.__cspViolations") == []
