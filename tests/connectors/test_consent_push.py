"""
Consents given here pushed to the shop (`push_unsubscribes`, "push marketing consent"), against the fake Admin
API on 127.0.0.1: a grant recorded here — double opt-in confirmed (at once, through the outbox), API, console
(the periodic collector) — is collected from the consent history and sent as SUBSCRIBED (CONFIRMED_OPT_IN when
the double opt-in link confirmed it); 429 is retried with back-off; the shop's echo changes nothing; a grant that
came from the shop is not pushed back to it.
"""

from datetime import timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.connectors.models import Push, PushCursor, RemoteRecord, WebhookDelivery
from apps.connectors.services.connections import connection_update
from apps.connectors.services.push import pushes_collect, pushes_run, pushes_send_due
from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent, ConsentEvent
from apps.customers.models import Customer, DomainEvent, DomainEventReceipt
from tests.api.conftest import api, integrator
from tests.connectors.support import (
    GRAPHQL,
    SHOPIFY_ID,
    assert_sent_on_retry,
    fixture,
    shop_customer,
    woo_customer,
    woo_pushing,
)
from tests.connectors.support import PUSH_TOKEN as TOKEN

pytestmark = pytest.mark.django_db

__all__ = ["api", "integrator"]


def granted_row(customer, channel="email") -> Consent:
    return Consent.objects.get(customer=customer, channel=channel, purpose="marketing")


def subscribe_variables(customer, *, level: str, channel="email") -> dict:
    key = "emailMarketingConsent" if channel == "email" else "smsMarketingConsent"
    return {
        "input": {
            "customerId": f"gid://shopify/Customer/{SHOPIFY_ID}",
            key: {
                "marketingState": "SUBSCRIBED",
                "marketingOptInLevel": level,
                "consentUpdatedAt": granted_row(customer, channel).granted_at.isoformat(),
            },
        }
    }


def test_a_double_opt_in_confirmed_here_reaches_shopify_as_subscribed_confirmed_opt_in(
    pushing, fake_shop, deliver, fire, api, client, settings
):
    settings.CONSENT_DOUBLE_OPT_IN = True
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")
    response = fire(
        api.patch,
        f"/api/v1/customers/{customer.pk}/",
        {"consents": [{"channel": "email", "status": "granted"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert granted_row(customer).status == "pending"
    assert pushes_run() == {}  # pending is the shop's own business: nothing pushed
    assert fake_shop.requests == []

    link = urlparse(consent.confirm_url(granted_row(customer))).path
    assert fire(client.post, link).status_code == 200  # customer.consent_confirmed: pushed at once
    assert granted_row(customer).status == "granted"
    assert pushes_run() == {}  # the periodic collector finds it queued and sent already

    assert len(fake_shop.requests) == 1
    sent = fake_shop.requests[0]
    assert (sent["method"], sent["path"]) == ("POST", GRAPHQL)
    assert sent["headers"]["x-shopify-access-token"] == TOKEN
    assert "customerEmailMarketingConsentUpdate(input: $input)" in sent["json"]["query"]
    assert sent["json"]["variables"] == subscribe_variables(customer, level="CONFIRMED_OPT_IN")
    push = Push.objects.get()
    grant = ConsentEvent.objects.get(customer=customer, new_status="granted")
    assert (push.kind, push.channel, push.status, push.attempts, push.source_key) == (
        "subscribe",
        "email",
        "sent",
        1,
        f"consent_event:{grant.pk}",
    )
    assert pushes_run(now=timezone.now() + timedelta(minutes=1)) == {}  # collected twice: queued once
    assert Push.objects.count() == 1 and len(fake_shop.requests) == 1
    event = DomainEvent.objects.get(name="customer.consent_confirmed", customer=customer)
    assert event.status == "processed"
    assert DomainEventReceipt.objects.filter(event=event, consumer="connectors").count() == 1


def test_a_grant_through_the_api_without_double_opt_in_is_single_opt_in(pushing, fake_shop, deliver, fire, api):
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")

    response = fire(
        api.patch, f"/api/v1/customers/{customer.pk}/", {"consents": [{"channel": "email", "status": "granted"}]}
    )
    assert response.status_code == 200, response.content  # a PATCH without `purpose` (marketing) was a 500
    pushes_run()

    assert [request["json"]["variables"] for request in fake_shop.requests] == [
        subscribe_variables(customer, level="SINGLE_OPT_IN")
    ]


def test_an_sms_grant_in_the_console_uses_the_sms_consent_mutation(pushing, fake_shop, deliver, fire):
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")
    Customer.objects.filter(pk=customer.pk).update(phone="+16135551111")

    fire(consent.consent_grant, customer=customer, channel="sms", source="admin", cause="admin")
    pushes_run()

    sent = fake_shop.requests[0]
    assert "customerSmsMarketingConsentUpdate(input: $input)" in sent["json"]["query"]
    assert sent["json"]["variables"] == subscribe_variables(customer, level="SINGLE_OPT_IN", channel="sms")
    assert Push.objects.get().channel == "sms"


def test_a_429_is_retried_after_its_retry_after_then_sent(pushing, fake_shop, deliver, fire):
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")
    fake_shop.answers = [(429, {"errors": "Exceeded 2 calls per second for api client."}, {"Retry-After": "45"})]
    fire(consent.consent_grant, customer=customer, channel="email", source="admin", cause="admin")
    now = timezone.now().replace(microsecond=0) + timedelta(seconds=5)

    assert pushes_run(now=now) == {"pending": 1}

    push = Push.objects.get()
    assert (push.status, push.attempts, push.last_error) == ("pending", 1, "the shop answered 429")
    assert push.next_attempt_at == now + timedelta(seconds=45)  # Retry-After is longer than the 30 s back-off
    assert_sent_on_retry(fake_shop, now + timedelta(seconds=45))
    assert fake_shop.requests[1]["json"]["variables"] == subscribe_variables(customer, level="SINGLE_OPT_IN")


def test_the_shops_echo_of_our_subscribe_changes_nothing_fires_nothing_and_pushes_nothing(
    pushing, fake_shop, deliver, fire
):
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")
    fire(consent.consent_grant, customer=customer, channel="email", source="admin", cause="admin")
    pushes_run()
    assert len(fake_shop.requests) == 1
    counts = (DomainEvent.objects.count(), ConsentEvent.objects.count(), Push.objects.count())

    echo = fixture("shopify", "customers/create")
    echo["updated_at"] = timezone.now().isoformat()
    echo["email_marketing_consent"] = {
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": granted_row(customer).granted_at.isoformat(),
    }
    deliver(pushing, "customers/update", echo, webhook_id="echo-subscribe")
    pushes_run(now=timezone.now() + timedelta(minutes=1))

    assert WebhookDelivery.objects.get(webhook_id="echo-subscribe").status == "processed"
    row = granted_row(customer)
    assert (row.status, row.source) == ("granted", "admin")  # still our grant, not re-recorded from the shop
    assert (DomainEvent.objects.count(), ConsentEvent.objects.count(), Push.objects.count()) == counts
    assert len(fake_shop.requests) == 1


def test_a_grant_that_came_from_the_shop_is_not_pushed_back_to_it(pushing, fake_shop, deliver):
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")
    update = fixture("shopify", "customers/create")
    update["updated_at"] = timezone.now().isoformat()
    update["email_marketing_consent"] = {"state": "subscribed", "consent_updated_at": update["updated_at"]}

    deliver(pushing, "customers/update", update)
    assert pushes_run() == {}

    assert (granted_row(customer).status, granted_row(customer).source) == ("granted", f"connector:{pushing.pk}")
    assert ConsentEvent.objects.filter(customer=customer, new_status="granted").count() == 1
    assert Push.objects.count() == 0 and fake_shop.requests == []


def test_a_consent_withdrawn_before_the_push_is_due_skips_it(pushing, fake_shop, deliver, fire):
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")
    fake_shop.answers = [(503, {}, {})]
    fire(consent.consent_grant, customer=customer, channel="email", source="admin", cause="admin")
    assert pushes_run() == {"pending": 1}
    fire(consent.consent_withdraw, customer=customer, source="admin", cause="admin")  # pushed at once (unsubscribe)

    # the unsubscribe waited behind the earlier subscribe (order per customer), which is now skipped
    assert pushes_send_due(now=timezone.now() + timedelta(minutes=5)) == {"skipped": 1, "sent": 1}

    subscribe = Push.objects.get(kind="subscribe")
    assert (subscribe.status, subscribe.last_error) == ("skipped", "the customer's consent is no longer granted here")
    states = [r["json"]["variables"]["input"]["emailMarketingConsent"]["marketingState"] for r in fake_shop.requests]
    assert states == ["SUBSCRIBED", "UNSUBSCRIBED"]  # the 503, then the unsubscribe; the subscribe never again
    assert Push.objects.get(kind="unsubscribe").status == "sent"


def test_the_late_echo_of_our_unsubscribe_does_not_undo_a_subscription_given_here_since(
    pushing, fake_shop, deliver, fire
):
    customer = shop_customer(deliver, pushing, email_state="subscribed")
    fire(consent.consent_withdraw, customer=customer, source="unsubscribe_link", cause="unsubscribe_link")
    withdrawn_at = granted_row(customer).withdrawn_at
    assert len(fake_shop.requests) == 1  # the unsubscribe, at once
    with time_machine.travel(timezone.now() + timedelta(seconds=10), tick=False):
        fire(consent.consent_grant, customer=customer, channel="email", source="form:spring", cause="form:spring")
    unsubscribed_events = DomainEvent.objects.filter(name="customer.unsubscribed").count()

    echo = fixture("shopify", "customers/create")  # the shop echoes our unsubscribe after the re-subscription
    echo["updated_at"] = (withdrawn_at + timedelta(seconds=1)).isoformat()
    echo["email_marketing_consent"] = {"state": "unsubscribed", "consent_updated_at": withdrawn_at.isoformat()}
    deliver(pushing, "customers/update", echo, webhook_id="late-echo")

    assert granted_row(customer).status == "granted"
    assert WebhookDelivery.objects.get(webhook_id="late-echo").outcome["consent_kept"] == {
        "email": f"subscribed here after the shop's withdrawn consent ({withdrawn_at.isoformat()})"
    }
    assert DomainEvent.objects.filter(name="customer.unsubscribed").count() == unsubscribed_events
    pushes_run(now=timezone.now() + timedelta(seconds=20))
    states = [r["json"]["variables"]["input"]["emailMarketingConsent"]["marketingState"] for r in fake_shop.requests]
    assert states == ["UNSUBSCRIBED", "SUBSCRIBED"]


def test_a_later_unsubscribe_in_the_shop_still_withdraws_a_grant_made_here(pushing, fake_shop, deliver, fire):
    customer = shop_customer(deliver, pushing, email_state="not_subscribed")
    fire(consent.consent_grant, customer=customer, channel="email", source="admin", cause="admin")
    later = timezone.now() + timedelta(minutes=5)

    update = fixture("shopify", "customers/create")
    update["updated_at"] = later.isoformat()
    update["email_marketing_consent"] = {"state": "unsubscribed", "consent_updated_at": later.isoformat()}
    deliver(pushing, "customers/update", update)

    row = granted_row(customer)
    assert (row.status, row.source) == ("withdrawn", f"connector:{pushing.pk}")


def test_woocommerce_gets_the_subscribed_meta_value_and_no_sms(woo_shop, fake_shop, deliver, fire):
    woo = woo_pushing(woo_shop, fake_shop, consent_meta_unsubscribed="no", consent_meta_subscribed="yes-please")
    customer = woo_customer(deliver, woo)
    Customer.objects.filter(pk=customer.pk).update(phone="+16135551111")

    fire(consent.consent_grant, customer=customer, channel="email", source="api", cause="api:token:1")
    fire(consent.consent_grant, customer=customer, channel="sms", source="api", cause="api:token:1")
    pushes_run()

    assert len(fake_shop.requests) == 1
    sent = fake_shop.requests[0]
    assert (sent["method"], sent["path"]) == ("PUT", "/wp-json/wc/v3/customers/25")
    assert sent["json"] == {"meta_data": [{"key": "newsletter_optin", "value": "yes-please"}]}

    events = (DomainEvent.objects.count(), ConsentEvent.objects.count())
    echo = fixture("woocommerce", "customer.updated")
    echo["date_modified_gmt"] = timezone.now().strftime("%Y-%m-%dT%H:%M:%S")
    echo["meta_data"] = [{"id": 1, "key": "newsletter_optin", "value": "yes-please"}]
    deliver(woo, "customer.updated", echo, delivery_id="woo-subscribe-echo")

    assert granted_row(customer).status == "granted"
    assert (DomainEvent.objects.count(), ConsentEvent.objects.count()) == events


def test_only_connections_with_the_setting_and_only_grants_after_it_was_switched_on(shop, fake_shop, deliver, fire):
    tags_only = connection_update(connection=shop, push_enabled=True, api_token=TOKEN, api_base_url=fake_shop.url)
    customer = shop_customer(deliver, tags_only, email_state="not_subscribed")
    fire(consent.consent_grant, customer=customer, channel="email", source="admin", cause="admin")
    pushes_run()
    assert Push.objects.count() == 0 and fake_shop.requests == []

    connection_update(connection=tags_only, push_unsubscribes=True)
    pushes_run(now=timezone.now() + timedelta(seconds=1))
    assert Push.objects.count() == 0  # given before the setting was on: not pushed

    fire(consent.consent_withdraw, customer=customer, source="admin", cause="admin")
    fire(consent.consent_grant, customer=customer, channel="email", source="admin", cause="admin")
    pushes_run(now=timezone.now() + timedelta(seconds=2))
    assert list(Push.objects.order_by("pk").values_list("kind", "status")) == [
        ("unsubscribe", "sent"),
        ("subscribe", "sent"),
    ]


def test_collecting_grants_is_set_based(pushing, fake_shop):
    """The statements of one collection do not grow with the grants collected (2 vs 20 customers)."""

    def collect_after_granting(count: int, first: int) -> tuple[int, int]:
        before = Push.objects.count()
        for number in range(first, first + count):
            customer = Customer.objects.create(email=f"c{number}@example.com", external_id=f"c{number}")
            RemoteRecord.objects.create(
                connection=pushing, kind="customer", remote_id=str(number), local_id=customer.pk
            )
            consent.consent_grant(customer=customer, channel="email", source="admin", cause="admin")
        with CaptureQueriesContext(db) as queries:
            pushes_collect(connection=pushing, now=timezone.now() + timedelta(seconds=first))
        return Push.objects.count() - before, len(queries)

    few, statements_few = collect_after_granting(2, 1)
    many, statements_many = collect_after_granting(20, 100)

    assert (few, many) == (2, 20)  # the first two, read again in the overlap window, are not queued twice
    assert statements_many == statements_few
    assert PushCursor.objects.get(connection=pushing).consents_since is not None
