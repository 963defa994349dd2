"""
Unsubscribes pushed back to the shop (`push_unsubscribes`), against a fake Admin API on 127.0.0.1: a withdrawal
here (API, unsubscribe link, console) reaches the shop through the outbox and a task; 5xx is retried with
back-off up to the cap, 4xx and userErrors end the push dead with the shop's reason; nothing loops.
"""

import base64
import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.connectors import consumer
from apps.connectors.models import Push, StoreConnection, WebhookDelivery
from apps.connectors.services.connections import connection_update
from apps.connectors.services.push import MAX_ATTEMPTS, push_send_one, pushes_send_due
from apps.connectors.tasks import push_send_task
from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent, ConsentEvent
from apps.customers.models import Customer, DomainEvent, DomainEventReceipt
from apps.platform.models import AuditEntry
from tests.api.conftest import api, integrator
from tests.connectors.support import (
    GRAPHQL,
    SHOPIFY_ID,
    WOO_API_KEY,
    assert_sent_on_retry,
    fixture,
    shop_customer,
    woo_customer,
    woo_pushing,
)
from tests.connectors.support import PUSH_TOKEN as TOKEN
from tests.factories import UserFactory
from tests.threads import run_together

pytestmark = pytest.mark.django_db

__all__ = ["api", "integrator"]


def withdrawn_at(customer, channel="email"):
    return Consent.objects.get(customer=customer, channel=channel, purpose="marketing").withdrawn_at


def unsubscribe_variables(customer) -> dict:
    return {
        "input": {
            "customerId": f"gid://shopify/Customer/{SHOPIFY_ID}",
            "emailMarketingConsent": {
                "marketingState": "UNSUBSCRIBED",
                "consentUpdatedAt": withdrawn_at(customer).isoformat(),
            },
        }
    }


def unsubscribe_by_api(fire, api, customer):
    response = fire(api.post, f"/api/v1/customers/{customer.pk}/unsubscribe/", format="json")
    assert response.status_code == 200, response.content
    return response


@pytest.mark.parametrize("entry", ["api", "link", "console"])
def test_an_unsubscribe_here_reaches_shopify_as_an_email_consent_update(
    entry, pushing, fake_shop, deliver, fire, api, admin_client, client
):
    customer = shop_customer(deliver, pushing)
    assert fake_shop.requests == []

    if entry == "api":
        unsubscribe_by_api(fire, api, customer)
    elif entry == "link":
        link = urlparse(consent.unsubscribe_url(customer, channel="email", purpose="marketing")).path
        assert fire(client.post, link).status_code == 200
    else:
        response = fire(
            admin_client.post,
            "/admin/customers/customer/",
            {"action": "unsubscribe_customers", "_selected_action": [customer.pk]},
        )
        assert response.status_code == 302

    assert len(fake_shop.requests) == 1
    sent = fake_shop.requests[0]
    assert (sent["method"], sent["path"]) == ("POST", GRAPHQL)
    assert sent["headers"]["x-shopify-access-token"] == TOKEN
    assert "customerEmailMarketingConsentUpdate(input: $input)" in sent["json"]["query"]
    assert sent["json"]["variables"] == unsubscribe_variables(customer)
    push = Push.objects.get()
    assert (push.kind, push.channel, push.status, push.attempts, push.last_error) == (
        "unsubscribe",
        "email",
        "sent",
        1,
        "",
    )
    assert push.customer_id == customer.pk and push.connection_id == pushing.pk
    event = DomainEvent.objects.get(name="customer.unsubscribed", customer=customer)
    assert push.source_key == f"unsubscribe:{event.pk}:email"
    assert DomainEventReceipt.objects.filter(event=event, consumer="connectors").count() == 1


def test_the_shops_echo_of_our_unsubscribe_changes_nothing_and_sends_nothing(pushing, fake_shop, deliver, fire, api):
    customer = shop_customer(deliver, pushing)
    unsubscribe_by_api(fire, api, customer)
    assert len(fake_shop.requests) == 1
    events, consent_events, pushes = DomainEvent.objects.count(), ConsentEvent.objects.count(), Push.objects.count()

    echo = fixture("shopify", "customers/create")
    echo["updated_at"] = timezone.now().isoformat()
    echo["email_marketing_consent"] = {
        "state": "unsubscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": withdrawn_at(customer).isoformat(),
    }
    deliver(pushing, "customers/update", echo, webhook_id="echo-1")

    assert WebhookDelivery.objects.get(webhook_id="echo-1").status == "processed"
    assert DomainEvent.objects.count() == events  # no second customer.unsubscribed, no workflow trigger
    assert ConsentEvent.objects.count() == consent_events
    assert Push.objects.count() == pushes
    assert len(fake_shop.requests) == 1


def test_an_unsubscribe_that_came_from_the_shop_is_not_pushed_back_to_it(pushing, fake_shop, deliver):
    customer = shop_customer(deliver, pushing)
    update = fixture("shopify", "customers/create")
    update["updated_at"] = "2012-08-24T14:05:00-04:00"
    update["email_marketing_consent"] = {"state": "unsubscribed", "consent_updated_at": "2012-08-24T14:05:00-04:00"}

    deliver(pushing, "customers/update", update)

    assert Consent.objects.get(customer=customer, channel="email").status == "withdrawn"
    event = DomainEvent.objects.get(name="customer.unsubscribed", customer=customer)
    assert event.cause == pushing.cause
    assert Push.objects.count() == 0 and fake_shop.requests == []
    # nothing to do for the connectors: no task, the event is settled without one
    assert DomainEvent.objects.get(pk=event.pk).status == "processed"


def test_only_connections_with_the_setting_push_unsubscribes(shop, fake_shop, deliver, fire, api):
    pushing_tags = connection_update(connection=shop, push_enabled=True, api_token=TOKEN, api_base_url=fake_shop.url)
    customer = shop_customer(deliver, pushing_tags)

    unsubscribe_by_api(fire, api, customer)

    assert Push.objects.count() == 0 and fake_shop.requests == []
    event = DomainEvent.objects.get(name="customer.unsubscribed", customer=customer)
    assert event.status == "processed"


def test_a_5xx_is_retried_with_back_off_then_sent(pushing, fake_shop, deliver, fire, api):
    customer = shop_customer(deliver, pushing)
    fake_shop.answers = [(503, {"errors": "Service Unavailable"}, {})]
    now = timezone.now().replace(microsecond=0) + timedelta(minutes=1)

    with time_machine.travel(now, tick=False):
        unsubscribe_by_api(fire, api, customer)

    push = Push.objects.get()
    assert (push.status, push.attempts, push.last_error) == ("pending", 1, "the shop answered 503")
    assert push.next_attempt_at == now + timedelta(seconds=30)
    assert_sent_on_retry(fake_shop, now + timedelta(seconds=30))
    assert fake_shop.requests[1]["json"]["variables"] == unsubscribe_variables(customer)


def test_retries_are_bounded_a_push_that_keeps_failing_ends_dead(pushing, fake_shop, deliver, fire, api):
    customer = shop_customer(deliver, pushing)
    fake_shop.answers = [(502, {"errors": "Bad Gateway"}, {})] * (MAX_ATTEMPTS + 2)
    unsubscribe_by_api(fire, api, customer)
    clock = timezone.now()

    for _ in range(MAX_ATTEMPTS + 2):
        clock += timedelta(hours=2)
        pushes_send_due(now=clock)

    push = Push.objects.get()
    assert (push.status, push.attempts, push.last_error) == ("dead", MAX_ATTEMPTS, "the shop answered 502")
    assert len(fake_shop.requests) == MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            (403, {"errors": "[API] This action requires merchant approval for write_customers scope."}, {}),
            'the shop answered 403: {"errors": "[API] This action requires merchant approval for write_customers '
            'scope."}',
        ),
        (
            (
                200,
                {
                    "data": {
                        "customerEmailMarketingConsentUpdate": {
                            "customer": None,
                            "userErrors": [{"field": ["input", "email"], "message": "Email can't be blank"}],
                        }
                    }
                },
                {},
            ),
            'userErrors: [{"field": ["input", "email"], "message": "Email can\'t be blank"}]',
        ),
    ],
)
def test_a_refusal_is_recorded_failed_with_the_shops_reason_and_not_retried(
    answer, reason, pushing, fake_shop, deliver, fire, api
):
    customer = shop_customer(deliver, pushing)
    fake_shop.answers = [answer]

    unsubscribe_by_api(fire, api, customer)

    push = Push.objects.get()
    assert (push.status, push.attempts, push.last_error) == ("dead", 1, reason)
    assert TOKEN not in push.last_error
    assert pushes_send_due(now=timezone.now() + timedelta(days=1)) == {}
    assert len(fake_shop.requests) == 1


def test_consuming_and_sending_twice_pushes_once(pushing, fake_shop, deliver, fire, api):
    customer = shop_customer(deliver, pushing)
    unsubscribe_by_api(fire, api, customer)
    event = DomainEvent.objects.get(name="customer.unsubscribed", customer=customer)
    push = Push.objects.get()

    assert consumer.consume(event.pk) == 1  # the outbox sweep re-driving it: the same push, already sent
    assert push_send_task(push.pk) is None
    assert push_send_one(push_id=push.pk, now=timezone.now() + timedelta(hours=1)) is None

    assert Push.objects.count() == 1
    assert len(fake_shop.requests) == 1


def test_a_consent_given_again_before_the_retry_skips_the_push(pushing, fake_shop, deliver, fire, api):
    customer = shop_customer(deliver, pushing)
    fake_shop.answers = [(500, {}, {})]
    unsubscribe_by_api(fire, api, customer)
    fire(consent.consent_grant, customer=customer, channel="email", source="admin")

    assert pushes_send_due(now=timezone.now() + timedelta(minutes=5)) == {"skipped": 1}

    push = Push.objects.get()
    assert (push.status, push.last_error) == ("skipped", "the customer's consent is no longer withdrawn here")
    assert len(fake_shop.requests) == 1


def test_a_stale_subscribed_delivery_does_not_undo_an_unsubscribe_but_a_newer_one_does(
    pushing, fake_shop, deliver, fire, api
):
    customer = shop_customer(deliver, pushing)
    unsubscribe_by_api(fire, api, customer)
    at = withdrawn_at(customer)

    stale = fixture("shopify", "customers/create")  # sent by the shop before our unsubscribe reached it
    stale["updated_at"] = (at - timedelta(seconds=5)).isoformat()
    stale["email_marketing_consent"] = {"state": "subscribed", "consent_updated_at": "2012-08-24T14:01:46-04:00"}
    deliver(pushing, "customers/update", stale, webhook_id="stale")

    assert Consent.objects.get(customer=customer, channel="email").status == "withdrawn"
    outcome = WebhookDelivery.objects.get(webhook_id="stale").outcome
    assert outcome["consent_kept"] == {
        "email": "unsubscribed here after the shop's granted consent (2012-08-24T14:01:46-04:00)"
    }

    again = fixture("shopify", "customers/create")  # the customer subscribed again in the shop, later
    again["updated_at"] = (at + timedelta(minutes=5)).isoformat()
    again["email_marketing_consent"] = {"state": "subscribed", "consent_updated_at": again["updated_at"]}
    deliver(pushing, "customers/update", again, webhook_id="again")

    row = Consent.objects.get(customer=customer, channel="email")
    assert (row.status, row.source) == ("granted", f"connector:{pushing.pk}")
    assert Push.objects.count() == 1 and len(fake_shop.requests) == 1  # a grant from the shop is not pushed back


def test_sms_unsubscribes_use_the_sms_consent_mutation(pushing, fake_shop, deliver, fire):
    customer = shop_customer(deliver, pushing)

    fire(consent.consent_withdraw, customer=customer, channel="sms", source="admin", cause="admin")

    sent = fake_shop.requests[0]
    assert "customerSmsMarketingConsentUpdate(input: $input)" in sent["json"]["query"]
    assert sent["json"]["variables"] == {
        "input": {
            "customerId": f"gid://shopify/Customer/{SHOPIFY_ID}",
            "smsMarketingConsent": {
                "marketingState": "UNSUBSCRIBED",
                "consentUpdatedAt": withdrawn_at(customer, "sms").isoformat(),
            },
        }
    }
    assert Push.objects.get().channel == "sms"


def test_woocommerce_gets_the_configured_meta_field_and_its_echo_changes_nothing(
    woo_shop, fake_shop, deliver, fire, api
):
    woo = woo_pushing(woo_shop, fake_shop, consent_meta_unsubscribed="no")
    customer = woo_customer(deliver, woo)

    unsubscribe_by_api(fire, api, customer)
    fire(consent.consent_withdraw, customer=customer, channel="sms", source="admin")  # WooCommerce keeps no SMS

    assert len(fake_shop.requests) == 1
    sent = fake_shop.requests[0]
    assert (sent["method"], sent["path"]) == ("PUT", "/wp-json/wc/v3/customers/25")
    assert sent["headers"]["authorization"] == "Basic " + base64.b64encode(WOO_API_KEY.encode()).decode()
    assert sent["json"] == {"meta_data": [{"key": "newsletter_optin", "value": "no"}]}
    assert list(Push.objects.values_list("status", "channel")) == [("sent", "email")]

    events = DomainEvent.objects.count()
    echo = fixture("woocommerce", "customer.updated")
    echo["date_modified_gmt"] = timezone.now().strftime("%Y-%m-%dT%H:%M:%S")
    echo["meta_data"] = [{"id": 1, "key": "newsletter_optin", "value": "no"}]
    deliver(woo, "customer.updated", echo, delivery_id="woo-echo")

    assert WebhookDelivery.objects.get(webhook_id="woo-echo").status == "processed"
    assert Consent.objects.get(customer=customer, channel="email").status == "withdrawn"
    assert DomainEvent.objects.count() == events and len(fake_shop.requests) == 1


def test_the_setting_needs_the_api_token_and_the_console_never_shows_it(shop, admin_client):
    with pytest.raises(Exception) as refused:
        connection_update(connection=shop, push_unsubscribes=True)
    assert refused.value.message_dict == {  # type: ignore[attr-defined]
        "push_unsubscribes": ["Give the shop's API token too: consent changes are sent through its Admin API."]
    }

    connection_update(connection=shop, push_unsubscribes=True, api_token=TOKEN)

    page = admin_client.get(f"/admin/connectors/storeconnection/{shop.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'<input type="checkbox" name="push_unsubscribes"[^>]* checked>', html)
    assert TOKEN not in html and StoreConnection.objects.get().api_token not in html
    assert TOKEN not in str(list(AuditEntry.objects.values_list("changes", flat=True)))


def test_a_user_who_may_only_view_connections_cannot_switch_unsubscribes_on(shop, client):
    viewer = UserFactory(is_staff=True, is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_storeconnection"))
    client.force_login(viewer)
    before = StoreConnection.objects.values().get()

    response = client.post(
        f"/admin/connectors/storeconnection/{shop.pk}/change/",
        {"name": shop.name, "shop_domain": shop.shop_domain, "shop_currency": "USD", "push_unsubscribes": "on"},
    )

    assert response.status_code == 403
    assert StoreConnection.objects.values().get() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_push_at_once_call_the_shop_once(shop, fake_shop, monkeypatch):
    from apps.connectors.models import RemoteRecord
    from apps.connectors.services.push import unsubscribe_pushes_queue
    from loyalty_site.lib import tasks

    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda *args, **kwargs: None)
    connection = connection_update(connection=shop, push_unsubscribes=True, api_token=TOKEN, api_base_url=fake_shop.url)
    customer = Customer.objects.create(email="bob@biller.com", external_id="x")
    RemoteRecord.objects.create(connection=connection, kind="customer", remote_id=SHOPIFY_ID, local_id=customer.pk)
    consent.consent_withdraw(customer=customer, source="admin", cause="admin")
    event = DomainEvent.objects.get(name="customer.unsubscribed")
    (push,) = unsubscribe_pushes_queue(event=event)
    outcomes = run_together(*[lambda: push_send_one(push_id=push.pk)] * 4)

    assert sorted(outcomes, key=str) == [None, None, None, "sent"]
    assert len(fake_shop.requests) == 1
    assert Push.objects.get().status == "sent"


def test_the_console_refuses_unsubscribes_without_a_token_and_a_bad_meta_key_on_their_fields(shop, admin_client):
    before = StoreConnection.objects.values().get()

    response = admin_client.post(
        f"/admin/connectors/storeconnection/{shop.pk}/change/",
        {
            "name": shop.name,
            "shop_domain": shop.shop_domain,
            "shop_currency": "USD",
            "status": "active",
            "topics": shop.topics,
            "push_unsubscribes": "on",
            "consent_meta_key": "not a key!",
            "consent_meta_unsubscribed": "",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "push_unsubscribes": ["Give the shop's API token too: consent changes are sent through its Admin API."],
        "consent_meta_key": ["A meta key: 1 to 100 letters, digits, _ . : or -, e.g. newsletter."],
    }
    assert StoreConnection.objects.values().get() == before
