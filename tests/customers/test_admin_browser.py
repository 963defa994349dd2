"""The "Add tag to selected customers" admin action in a real Chromium, as a marketer uses it."""

import pytest

from apps.tagging.models import CustomerTag, TagAudit
from tests.factories import CustomerFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_tags_two_selected_customers_from_the_changelist(live_server, page, screenshot):
    UserFactory(username="marketer")
    anna = CustomerFactory(email="anna@example.com", first_name="Anna", last_name="A")
    bob = CustomerFactory(email="bob@example.com", first_name="Bob", last_name="B")
    carl = CustomerFactory(email="carl@example.com", first_name="Carl", last_name="C")
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill("marketer")
    page.get_by_label("Password").fill("pass12345")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")

    page.goto(live_server.url + "/admin/customers/customer/")
    for customer in (anna, bob):
        page.locator(f"input[name='_selected_action'][value='{customer.pk}']").check()
    page.locator("select[name='action']").select_option("add_tag_to_customers")
    page.get_by_role("button", name="Go").click()
    page.get_by_label("Tag name").fill("Spring VIP")
    screenshot("admin-add-tag-form")
    page.get_by_role("button", name="Add tag").click()

    page.wait_for_url(live_server.url + "/admin/customers/customer/")
    assert "added to 2 customer(s); 0 already had it" in page.locator(".messagelist").inner_text()
    assert sorted(CustomerTag.objects.values_list("customer__email", "tag__name")) == [
        ("anna@example.com", "Spring VIP"),
        ("bob@example.com", "Spring VIP"),
    ]
    assert not CustomerTag.objects.filter(customer=carl).exists()
    assert TagAudit.objects.filter(action="added", actor__username="marketer").count() == 2
