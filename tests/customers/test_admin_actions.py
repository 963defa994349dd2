import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.customers.models import Customer, DomainEvent
from apps.platform.authentication import token_digest
from apps.platform.models import ApiToken
from apps.tagging.models import CustomerTag, Tag, TagAudit
from apps.tagging.services import tags_add
from tests.factories import CustomerFactory, make_order

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:customers_customer_changelist"


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_add_tag_action_asks_for_the_tag_name_first(admin_client):
    customers = [CustomerFactory(), CustomerFactory()]

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "add_tag_to_customers", "_selected_action": [c.pk for c in customers]},
    )

    assert response.status_code == 200
    assert b"Add tag to selected customers" in response.content
    assert b'name="tag"' in response.content
    assert CustomerTag.objects.count() == 0


def test_add_tag_action_adds_through_the_service_and_reports_counts(admin_client, admin_user):
    tagged, untagged = CustomerFactory(), CustomerFactory()
    tags_add(customer=tagged, names=["VIP"])

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "add_tag_to_customers", "_selected_action": [tagged.pk, untagged.pk], "apply": "1", "tag": "vip"},
        follow=True,
    )

    assert _messages(response) == ["Tag “vip” added to 1 customer(s); 1 already had it."]
    assert Tag.objects.count() == 1
    row = CustomerTag.objects.get(customer=untagged)
    assert (row.source, row.added_by) == ("manual", admin_user)
    assert TagAudit.objects.filter(customer=untagged, action="added").count() == 1


def test_activate_action_reports_skipped_disabled_customers(admin_client):
    ok = CustomerFactory(state="invited")
    disabled = CustomerFactory(state="disabled")

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "activate_customers", "_selected_action": [ok.pk, disabled.pk]},
        follow=True,
    )

    messages = _messages(response)
    assert messages[0] == "1 customer(s) activated."
    assert messages[1].startswith("1 skipped: ")
    assert list(Customer.objects.order_by("pk").values_list("state", flat=True)) == ["registered", "disabled"]


def test_unsubscribe_action(admin_client):
    customer = CustomerFactory()

    admin_client.post(reverse(CHANGELIST), {"action": "unsubscribe_customers", "_selected_action": [customer.pk]})

    customer.refresh_from_db()
    assert customer.accepts_marketing is False
    assert DomainEvent.objects.filter(name="customer.unsubscribed", cause="admin").count() == 1


def test_adding_a_customer_in_the_admin_goes_through_the_service(admin_client):
    response = admin_client.post(
        reverse("admin:customers_customer_add"),
        {
            "external_id": "c-admin",
            "email": "New@Example.com",
            "country": "de",
            "accepts_marketing": "on",
            "attributes": "{}",
            "orders-TOTAL_FORMS": "0",
            "orders-INITIAL_FORMS": "0",
            "customer_tags-TOTAL_FORMS": "0",
            "customer_tags-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    customer = Customer.objects.get(external_id="c-admin")
    assert (customer.email, customer.country) == ("new@example.com", "DE")
    assert DomainEvent.objects.filter(name="customer.registered", customer=customer, cause="admin").count() == 1


def test_cancel_orders_action(admin_client):
    customer = CustomerFactory()
    order = make_order(customer, total="10.00")

    admin_client.post(
        reverse("admin:customers_order_changelist"), {"action": "cancel_orders", "_selected_action": [order.pk]}
    )

    order.refresh_from_db()
    customer.refresh_from_db()
    assert (order.status, customer.orders_count) == ("cancelled", 0)


def test_creating_an_api_token_in_the_admin_shows_it_once_and_stores_its_digest(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:platform_apitoken_add"),
        {"user": admin_user.pk, "name": "shop", "scopes": ["ingest"]},
        follow=True,
    )

    message = next(m for m in _messages(response) if m.startswith("New API token"))
    raw = message.rsplit(" ", 1)[-1]
    assert ApiToken.objects.get().digest == token_digest(raw)


def test_adding_a_customer_tag_in_the_admin_is_audited(admin_client):
    customer = CustomerFactory()
    tag = Tag.objects.create(name="VIP")

    response = admin_client.post(reverse("admin:tagging_customertag_add"), {"customer": customer.pk, "tag": tag.pk})

    assert response.status_code == 302
    assert CustomerTag.objects.filter(customer=customer, tag=tag).count() == 1
    assert DomainEvent.objects.filter(name="customer.tag_added").count() == 1


def test_customer_changelist_filters_by_tag(admin_client):
    vip, other = CustomerFactory(email="vip@example.com"), CustomerFactory(email="other@example.com")
    tags_add(customer=vip, names=["VIP"])
    tag = Tag.objects.get()

    response = admin_client.get(reverse(CHANGELIST), {"tag": tag.pk})

    assert response.status_code == 200
    assert b"vip@example.com" in response.content
    assert other.email.encode() not in response.content


def test_customer_change_page_shows_the_latest_orders_and_links_to_all(admin_client):
    customer = CustomerFactory()
    make_order(customer, total="12.00", external_id="o-latest")

    response = admin_client.get(reverse("admin:customers_customer_change", args=[customer.pk]))

    assert response.status_code == 200
    assert b"o-latest" in response.content
    assert f"?customer__id__exact={customer.pk}".encode() in response.content


def test_the_all_orders_link_filters_the_order_changelist(admin_client):
    customer, other = CustomerFactory(), CustomerFactory()
    make_order(customer, external_id="o-mine")
    make_order(other, external_id="o-theirs")

    response = admin_client.get(reverse("admin:customers_order_changelist") + f"?customer__id__exact={customer.pk}")

    assert response.status_code == 200
    assert b"o-mine" in response.content
    assert b"o-theirs" not in response.content
