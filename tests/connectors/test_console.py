"""The console: connect a shop (secret write-only, instructions with the exact URL), deliveries, re-process."""

import pytest
from django.contrib.auth.models import Group, Permission

from apps.connectors.models import StoreConnection, WebhookDelivery
from apps.platform.models import AuditEntry
from tests.connectors.support import SECRET, fixture
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/connectors/storeconnection/add/"
FORM = {
    "name": "EU shop",
    "platform": "shopify",
    "shop_domain": "https://EU-Shop.myshopify.com/admin",
    "shop_currency": "eur",
    "signing_secret": SECRET,
    "api_token": "shpat_secret_token_value",
    "api_base_url": "",
}


def marketer():
    user = UserFactory(username="marketer", is_superuser=False)
    user.groups.add(Group.objects.get(name="marketer"))
    return user


def analyst():
    user = UserFactory(username="analyst", is_superuser=False)
    user.groups.add(Group.objects.get(name="analyst"))
    return user


def test_a_marketer_connects_a_shop_and_sees_the_webhook_address(client):
    client.force_login(marketer())
    response = client.post(ADD_URL, FORM, follow=True)
    connection = StoreConnection.objects.get()
    assert (connection.shop_domain, connection.shop_currency, connection.platform) == (
        "eu-shop.myshopify.com",
        "EUR",
        "shopify",
    )
    assert connection.signing_secret.startswith("encrypted:v1:") and SECRET not in connection.signing_secret
    assert connection.api_token.startswith("encrypted:v1:")
    assert len(connection.topics) == 14
    page = response.content.decode()
    assert f"http://testserver/hooks/shopify/{connection.hook_key}/" in page
    assert "orders/create" in page and "Create webhook" in page
    assert SECRET not in page and "shpat_secret_token_value" not in page
    entry = AuditEntry.objects.get(object_type="connectors.storeconnection")
    assert entry.action == "created" and "signing_secret" not in entry.changes
    assert SECRET not in str(entry.changes)


def test_the_change_page_never_echoes_the_secrets_and_empty_keeps_them(client):
    client.force_login(marketer())
    client.post(ADD_URL, FORM)
    connection = StoreConnection.objects.get()
    stored = connection.signing_secret
    page = client.get(f"/admin/connectors/storeconnection/{connection.pk}/change/").content.decode()
    assert SECRET not in page and stored not in page
    response = client.post(
        f"/admin/connectors/storeconnection/{connection.pk}/change/",
        {
            "name": "EU shop",
            "shop_domain": "eu-shop.myshopify.com",
            "shop_currency": "EUR",
            "status": "active",
            "topics": ["orders/create", "refunds/create"],
            "signing_secret": "",
            "api_token": "",
            "api_base_url": "",
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.signing_secret == stored
    assert connection.topics == ["orders/create", "refunds/create"]


def test_connecting_the_same_shop_twice_is_refused_with_a_message(client):
    client.force_login(marketer())
    client.post(ADD_URL, FORM)
    response = client.post(ADD_URL, FORM, follow=True)
    assert "This shop is already connected." in response.content.decode()
    assert StoreConnection.objects.count() == 1


def test_an_analyst_may_look_but_not_connect(client):
    client.force_login(analyst())
    assert client.get("/admin/connectors/storeconnection/").status_code == 200
    assert client.post(ADD_URL, FORM).status_code == 403
    assert StoreConnection.objects.count() == 0


def test_reprocess_a_failed_delivery_needs_the_permission(client, shop, deliver, queue):
    deliver(shop, "refunds/create", fixture("shopify", "refunds/create"))  # its order is unknown: failed
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    data = {"action": "reprocess", "_selected_action": [delivery.pk]}

    client.force_login(analyst())
    client.post("/admin/connectors/webhookdelivery/", data)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert queue.calls == []

    user = analyst()
    user.user_permissions.add(Permission.objects.get(codename="reprocess_delivery"))
    client.force_login(user)
    client.post("/admin/connectors/webhookdelivery/", data)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("received", 0)
    assert queue.names() == ["delivery_process_task"]


def test_the_connection_list_links_deliveries_and_errors(client, shop, deliver):
    deliver(shop, "refunds/create", fixture("shopify", "refunds/create"))
    client.force_login(marketer())
    page = client.get("/admin/connectors/storeconnection/").content.decode()
    assert f"?connection__id__exact={shop.pk}&amp;status__in=failed,dead" in page
    listing = client.get(f"/admin/connectors/webhookdelivery/?connection__id__exact={shop.pk}&status__in=failed,dead")
    assert "has not been received yet" in listing.content.decode()


def test_the_deliveries_list_takes_the_same_queries_for_2_or_20_rows(admin_client, shop, deliver):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/connectors/webhookdelivery/").status_code == 200
        return len(captured)

    for n in range(2):
        deliver(shop, "inventory_levels/update", {"n": n})
    few = queries()
    for n in range(2, 20):
        deliver(shop, "inventory_levels/update", {"n": n})
    assert queries() == few
