"""`consent.allows` is the one answer to "may we send?": consent rows, the legacy mirror, suppression, blocks."""

import pytest

from apps.customers import services as customers
from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent, ConsentEvent, Suppression
from apps.customers.models import Customer, DomainEvent
from apps.platform.models import AuditEntry
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_customer_without_rows_follows_the_legacy_flag_for_email_and_in_app_but_not_sms():
    subscribed = CustomerFactory(accepts_marketing=True, phone="+15550001")
    never = CustomerFactory(accepts_marketing=False)

    assert consent.allows(subscribed, channel="email", purpose="marketing") is None
    assert consent.allows(subscribed, channel="in_app", purpose="marketing") is None
    assert consent.allows(subscribed, channel="sms", purpose="marketing") == "no_consent"
    assert consent.allows(never, channel="email", purpose="marketing") == "no_consent"
    assert consent.allows(never, channel="email", purpose="transactional") is None


def test_each_status_gives_its_reason_and_transactional_needs_no_consent():
    customer = CustomerFactory(accepts_marketing=False, phone="+15550002")

    consent.consent_set(customer=customer, channel="sms", purpose="marketing", status="pending", source="form:summer")
    assert consent.allows(customer, channel="sms", purpose="marketing") == "unconfirmed"
    consent.consent_set(customer=customer, channel="sms", purpose="marketing", status="granted", source="admin")
    assert consent.allows(customer, channel="sms", purpose="marketing") is None
    consent.consent_set(customer=customer, channel="sms", purpose="marketing", status="withdrawn", source="admin")
    assert consent.allows(customer, channel="sms", purpose="marketing") == "unsubscribed"
    assert consent.allows(customer, channel="sms", purpose="transactional") is None


def test_a_suppressed_address_receives_nothing_whatever_the_consent():
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=True)

    consent.suppress("  ANA@example.com ", channel="email", reason="hard_bounce")

    assert consent.allows(customer, channel="email", purpose="marketing") == "suppressed"
    assert consent.allows(customer, channel="email", purpose="transactional") == "suppressed"
    assert consent.allows(customer, channel="in_app", purpose="marketing") is None
    row = Suppression.objects.get()
    assert (row.address, row.channel, row.reason, row.source) == ("ana@example.com", "email", "hard_bounce", "delivery")
    consent.suppress("ana@example.com", channel="email", reason="complaint")  # again: the first row stays
    assert list(Suppression.objects.values_list("reason", flat=True)) == ["hard_bounce"]
    assert AuditEntry.objects.filter(object_type="customers.suppression", action="created").count() == 1


def test_a_blocked_customer_receives_nothing():
    customer = CustomerFactory(accepts_marketing=True, status="blocked")

    assert consent.allows(customer, channel="email", purpose="transactional") == "blocked"


def test_unknown_channel_or_purpose_is_a_validation_error_with_the_field():
    customer = CustomerFactory()

    with pytest.raises(Exception) as error:
        consent.allows(customer, channel="pigeon", purpose="marketing")
    assert error.value.message_dict == {"channel": ["Unknown channel 'pigeon'; one of email, sms, in_app."]}


def test_a_consent_change_is_audited_recorded_in_history_and_mirrored():
    customer = CustomerFactory(accepts_marketing=False)

    consent.consent_set(customer=customer, channel="email", purpose="marketing", status="granted", source="csv")

    customer.refresh_from_db()
    assert (customer.accepts_marketing, customer.unsubscribed_at) == (True, None)
    row = Consent.objects.get(customer=customer)
    assert (row.status, row.source) == ("granted", "csv")
    entry = AuditEntry.objects.get(object_type="customers.consent", object_id=str(row.pk))
    assert entry.action == "created" and entry.changes["status"] == {"old": None, "new": "granted"}
    event = ConsentEvent.objects.get(customer=customer)
    assert (event.channel, event.purpose, event.old_status, event.new_status, event.source) == (
        "email",
        "marketing",
        "",
        "granted",
        "csv",
    )


def test_setting_the_same_status_again_changes_nothing():
    customer = CustomerFactory(accepts_marketing=False)
    consent.consent_set(customer=customer, channel="email", purpose="marketing", status="granted", source="api")

    outcome = consent.consent_set(
        customer=customer, channel="email", purpose="marketing", status="granted", source="admin"
    )

    assert outcome.changed is False
    assert Consent.objects.get(customer=customer).source == "api"
    assert ConsentEvent.objects.filter(customer=customer).count() == 1


def test_legacy_unsubscribe_withdraws_the_consent_and_fires_once(django_capture_on_commit_callbacks):
    customer = CustomerFactory(accepts_marketing=True)

    with django_capture_on_commit_callbacks(execute=True):
        customers.customer_unsubscribe(customer=customer, cause="api:token:1")
        customers.customer_unsubscribe(customer=customer, cause="api:token:1")

    customer.refresh_from_db()
    assert customer.accepts_marketing is False and customer.unsubscribed_at is not None
    row = Consent.objects.get(customer=customer)
    assert (row.channel, row.purpose, row.status, row.source) == ("email", "marketing", "withdrawn", "api")
    assert DomainEvent.objects.filter(customer=customer, name="customer.unsubscribed").count() == 1
    assert consent.allows(customer, channel="email", purpose="marketing") == "unsubscribed"


def test_accepts_marketing_through_the_customer_services_goes_through_consent():
    customer = customers.customer_create(
        external_id="c-1", email="bo@example.com", accepts_marketing=True, cause="api:token:4"
    )
    assert Consent.objects.get(customer=customer).source == "api"

    customers.customer_update(customer=customer, accepts_marketing=False, cause="import:file.csv")

    customer.refresh_from_db()
    assert customer.accepts_marketing is False
    assert list(ConsentEvent.objects.filter(customer=customer).values_list("new_status", "source")) == [
        ("withdrawn", "csv"),
        ("granted", "api"),
    ]
    assert DomainEvent.objects.filter(customer=customer, name="customer.unsubscribed").count() == 1


def test_false_for_a_customer_who_never_consented_records_nothing():
    customer = customers.customer_create(external_id="c-2", email="cy@example.com", accepts_marketing=False)

    customers.customer_update(customer=customer, accepts_marketing=False)

    assert Consent.objects.filter(customer=customer).count() == 0
    assert not DomainEvent.objects.filter(customer=customer, name="customer.unsubscribed").exists()
    assert Customer.objects.get(pk=customer.pk).accepts_marketing is False


def test_a_stale_instance_saved_by_a_profile_update_keeps_the_consent_mirror():
    customer = CustomerFactory(accepts_marketing=True)
    stale = Customer.objects.get(pk=customer.pk)
    customers.customer_unsubscribe(customer=customer)

    customers.customer_update(customer=stale, first_name="Zed")

    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.first_name, fresh.accepts_marketing) == ("Zed", False)


@pytest.mark.parametrize("channel", ["email", "sms", "in_app"])
@pytest.mark.parametrize("purpose", ["marketing", "transactional"])
def test_the_set_based_filter_agrees_with_allows(channel, purpose):
    people = [
        CustomerFactory(email="a@example.com", phone="+1001", accepts_marketing=True),
        CustomerFactory(email="b@example.com", phone="+1002", accepts_marketing=False),
        CustomerFactory(email="c@example.com", phone="+1003", accepts_marketing=True, status="blocked"),
        CustomerFactory(email="d@example.com", phone="+1004", accepts_marketing=False),
        CustomerFactory(email="e@example.com", phone="+1005", accepts_marketing=True),
        CustomerFactory(email="", phone="", accepts_marketing=True),
    ]
    for person, status in ((people[1], "granted"), (people[3], "pending"), (people[4], "withdrawn")):
        consent.consent_set(customer=person, channel=channel, purpose=purpose, status=status, source="admin")
    consent.suppress("a@example.com", channel="email", reason="complaint")
    consent.suppress("+1002", channel="sms", reason="manual")

    expected = {person.pk for person in people if consent.allows(person, channel=channel, purpose=purpose) is None}
    got = set(
        consent.customers_allowed(Customer.objects.all(), channel=channel, purpose=purpose).values_list("pk", flat=True)
    )

    assert got == expected


def test_allows_costs_two_queries(django_assert_num_queries):
    customer = CustomerFactory(accepts_marketing=True)

    with django_assert_num_queries(2):
        assert consent.allows(customer, channel="email", purpose="marketing") is None
