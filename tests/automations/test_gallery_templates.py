"""
Every gallery template end to end: install it through the API (changing a param), activate it, feed
realistic data through the integrator API, let the worker run (django-q2 in sync mode, on commit), and
assert exactly which customers got which tags — and which did not.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from apps.automations import engine
from apps.automations.models import Workflow, WorkflowRun
from apps.customers import services as customer_services
from apps.customers.models import Customer
from apps.tagging.models import CustomerTag
from tests.factories import CustomerFactory, StoreFactory, UserFactory, make_order
from tests.integrator import NOW, Feed, feed_for, line, tagged_with, tags

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def feed(user, settings, django_capture_on_commit_callbacks) -> Feed:
    settings.TASKS_SYNC = True
    return feed_for(user, django_capture_on_commit_callbacks)


# --- 1-4: lifecycle and order events ----------------------------------------------------------------------


def test_1_unsubscribed(clock, feed):
    feed.install("unsubscribed", {"tag": "Opted out"})
    leaver, stayer = feed.customer("c-leaver", email="l@example.com"), feed.customer("c-stay", email="s@example.com")

    feed.post(f"/api/v1/customers/{leaver.pk}/unsubscribe/")
    feed.post(f"/api/v1/customers/{leaver.pk}/unsubscribe/")  # a second call sends nothing new

    assert tagged_with("Opted out") == {"c-leaver"}
    assert tags(stayer) == set()
    assert CustomerTag.objects.get(tag__name="Opted out").source == "workflow"


def test_2_offline_customer(clock, feed):
    feed.install("offline_customer", {"tag": "In-store buyer"})
    shop, web = feed.customer("c-shop"), feed.customer("c-web")

    feed.order(shop, "25.00", channel="pos")
    feed.order(web, "25.00", channel="online")

    assert tagged_with("In-store buyer") == {"c-shop"}


def test_3_refunded_customer(clock, feed):
    feed.install("refunded_customer", {"tag": "Refund risk"})
    refunded, kept, cancelled = feed.customer("c-ref"), feed.customer("c-kept"), feed.customer("c-cancel")
    order = feed.order(refunded, "80.00")
    feed.order(kept, "80.00")
    to_cancel = feed.order(cancelled, "80.00")

    feed.post(f"/api/v1/orders/{order['id']}/refunds/", {"amount": "10.00", "reason": "damaged"})
    feed.post(f"/api/v1/orders/{to_cancel['id']}/cancel/")

    assert tagged_with("Refund risk") == {"c-ref"}


def test_4_registered(clock, feed):
    feed.install("registered", {"tag": "Member"})
    CustomerFactory(external_id="c-imported")  # history loaded without a registration event

    feed.customer("c-new", email="new@example.com")
    feed.customer("c-new", first_name="Renamed")  # an upsert of the same customer is no new registration

    assert tagged_with("Member") == {"c-new"}
    assert WorkflowRun.objects.filter(status="succeeded").count() == 1


# --- 5, 7, 9, 10: what was bought, where, in which currency -------------------------------------------------


def test_5_product_tags_synced_to_buyers(clock, feed):
    feed.install("product_tag_sync", {"product_tags": ["Kids & Baby", "Fitness"]})
    feed.post("/api/v1/products/", {"external_id": "p-stroller", "title": "Stroller", "tags": ["Kids & Baby"]})
    feed.post("/api/v1/products/", {"external_id": "p-tv", "title": "4K TV", "tags": ["Electronics"]})
    feed.post("/api/v1/products/", {"external_id": "p-mat", "title": "Yoga Mat", "tags": ["Fitness", "Sport"]})
    parent, gamer, both = feed.customer("c-parent"), feed.customer("c-gamer"), feed.customer("c-both")

    feed.order(parent, "199.00", lines=[line("Stroller", "199.00", product_external_id="p-stroller")])
    feed.order(gamer, "499.00", lines=[line("4K TV", "499.00", product_external_id="p-tv")])
    feed.order(
        both,
        "229.00",
        lines=[
            line("Stroller", "199.00", product_external_id="p-stroller"),
            line("Yoga Mat", "30.00", product_external_id="p-mat"),
        ],
    )

    assert (tags(parent), tags(gamer), tags(both)) == ({"Kids & Baby"}, set(), {"Kids & Baby", "Fitness"})


def test_7_preferred_currency_one_tag_at_a_time(clock, feed):
    feed.install("currency", {"tag_template": "Pays {{ customer.preferred_currency }}"})
    euro, mixed, none = feed.customer("c-eur"), feed.customer("c-mixed"), feed.customer("c-none")

    feed.order(euro, "10.00", currency="eur")
    feed.order(mixed, "10.00", currency="USD", placed_at=NOW - timedelta(hours=2))
    feed.order(mixed, "250000", currency="VND", placed_at=NOW - timedelta(hours=1))
    # one order each: the most recent one (VND) decides
    assert (tags(euro), tags(mixed), tags(none)) == ({"Pays EUR"}, {"Pays VND"}, set())

    feed.order(mixed, "12.00", currency="USD")

    assert tags(mixed) == {"Pays USD"}


def test_9_shipping_country(clock, feed):
    feed.install("country", {"tag_template": "Country {{ order.shipping_country }}"})
    german, pickup = feed.customer("c-de"), feed.customer("c-pickup")

    feed.order(german, "10.00", shipping_country="de")
    feed.order(pickup, "10.00", shipping_country="", channel="pos")

    assert (tags(german), tags(pickup)) == ({"Country DE"}, set())


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Women's Running Shoes", True),
        ("Gift box for HER", True),
        ("Ladies Handbag", True),
        ("Female Fit Yoga Mat", True),
        ("Mother's Day Card", False),
        ("Hermes Style Scarf", False),
        ("Womenswear Jacket", False),
        ("Cherry Jam", False),
    ],
)
def test_10_gender_keywords_match_whole_words_only(clock, feed, title, expected):
    feed.install("gender_keywords", {"tag": "Women"})
    buyer = feed.customer("c-buyer")

    feed.order(buyer, "20.00", lines=[line("Socks", "5.00"), line(title, "15.00")])

    assert tags(buyer) == ({"Women"} if expected else set())
    # The workflow did look at the order: the trigger filter decided.
    assert WorkflowRun.objects.get().status == ("succeeded" if expected else "skipped")


# --- 8, 12, 14, 15: counts and spend as orders arrive -----------------------------------------------------


def test_8_active_high_value_in_the_window(clock, feed):
    feed.install("active_high_value", {"tag": "Hot", "min_orders": 2, "min_spent": "500", "days": 30})
    edge, stale, cancelled, short = (feed.customer(f"c-{n}") for n in ("edge", "stale", "cancelled", "short"))

    feed.order(edge, "300.00", placed_at=NOW - timedelta(days=10))
    feed.order(edge, "200.00")  # 2 orders, 500.00 in 30 days -> in
    feed.order(stale, "400.00", placed_at=NOW - timedelta(days=31))
    feed.order(stale, "400.00")  # the first order is outside the window -> out
    gone = feed.order(cancelled, "400.00", placed_at=NOW - timedelta(days=3))
    feed.post(f"/api/v1/orders/{gone['id']}/cancel/")
    feed.order(cancelled, "400.00")  # the cancelled order does not count -> out
    feed.order(short, "250.00", placed_at=NOW - timedelta(days=2))
    feed.order(short, "249.99")  # 499.99 -> out

    assert tagged_with("Hot") == {"c-edge"}


def test_12_first_time_buyer(clock, feed):
    returning, second_try, first = feed.customer("c-returning"), feed.customer("c-second-try"), feed.customer("c-first")
    # History loaded before the workflow existed: one paid order, one cancelled order.
    make_order(Customer.objects.get(pk=returning.pk), total="15.00", placed_at=NOW - timedelta(days=400))
    cancelled = make_order(Customer.objects.get(pk=second_try.pk), total="15.00", placed_at=NOW - timedelta(days=9))
    customer_services.order_cancel(order=cancelled)
    feed.install("first_time_buyer", {"tag": "Newbie"})

    feed.order(first, "35.00")  # -> in
    feed.order(returning, "35.00")  # their second order -> out
    feed.order(second_try, "35.00")  # the cancelled order does not count: this is the first -> in

    assert tagged_with("Newbie") == {"c-first", "c-second-try"}


def test_14_high_value_thresholds(clock, feed):
    feed.install("high_value", {"tag": "Big spender", "min_orders": 3, "min_spent": "1000"})
    edge, short, few, refunded = (feed.customer(f"c-{n}") for n in ("edge", "short", "few", "refunded"))

    for total in ("400.00", "300.00", "300.00"):
        feed.order(edge, total)  # 3 orders, 1000.00 -> in
    for total in ("400.00", "300.00", "299.99"):
        feed.order(short, total)  # 999.99 -> out
    for total in ("900.00", "900.00"):
        feed.order(few, total)  # 2 orders -> out
    first = feed.order(refunded, "400.00")
    feed.order(refunded, "400.00")
    feed.post(f"/api/v1/orders/{first['id']}/refunds/", {"amount": "201.00"})
    feed.order(refunded, "400.00")  # 1200 - 201 = 999.00 net -> out

    assert tagged_with("Big spender") == {"c-edge"}
    assert Customer.objects.get(pk=refunded.pk).total_spent == Decimal("999.00")


def test_15_repeat_buyer_kept_up_to_date(clock, feed):
    feed.install("repeat_buyer", {"tag": "Regular", "min_orders": 2, "days": 60})
    regular, slow = feed.customer("c-regular"), feed.customer("c-slow")

    feed.order(regular, "20.00", placed_at=NOW - timedelta(days=50))
    feed.order(regular, "20.00")
    feed.order(slow, "20.00", placed_at=NOW - timedelta(days=70))
    feed.order(slow, "20.00")
    assert tagged_with("Regular") == {"c-regular"}

    clock.move_to(NOW + timedelta(days=100))
    feed.order(regular, "20.00")  # only one order in the last 60 days now: the tag goes
    feed.order(slow, "20.00", placed_at=NOW + timedelta(days=90))
    feed.order(slow, "20.00")  # two orders within 60 days now: the tag comes

    assert tagged_with("Regular") == {"c-slow"}


# --- 6, 11: state tags over time and tiers ---------------------------------------------------------------


def test_6_inactive_high_value_state_tag(clock, feed):
    names = ("edge", "recent", "below", "refunded", "cancelled", "never")
    edge, recent, below, refunded, cancelled, _never = (feed.customer(f"c-{n}") for n in names)
    feed.order(edge, "500.00", placed_at=NOW - timedelta(days=31))
    feed.order(recent, "900.00", placed_at=NOW - timedelta(days=29))
    feed.order(below, "499.99", placed_at=NOW - timedelta(days=45))
    order = feed.order(refunded, "600.00", placed_at=NOW - timedelta(days=45))
    feed.post(f"/api/v1/orders/{order['id']}/refunds/", {"amount": "100.01"})
    feed.order(cancelled, "700.00", placed_at=NOW - timedelta(days=60))
    late = feed.order(cancelled, "50.00", placed_at=NOW - timedelta(days=2))
    feed.post(f"/api/v1/orders/{late['id']}/cancel/")

    workflow = Workflow.objects.get(
        pk=feed.install("inactive_high_value", {"tag": "Win back", "days": 30, "min_spent": "500"})["id"]
    )

    # activation recomputes the state tag for every customer at once
    assert tagged_with("Win back") == {"c-edge", "c-cancelled"}
    assert set(CustomerTag.objects.filter(tag__name="Win back").values_list("source_ref", flat=True)) == {
        f"state_tag:{workflow.pk}:fill"
    }
    feed.order(edge, "10.00")  # ordering again takes the tag off at once
    assert tagged_with("Win back") == {"c-cancelled"}


def test_11_spend_tiers_switch_on_the_order_that_crosses_a_threshold(clock, feed):
    feed.install(
        "spend_tiers",
        {"high_tag": "Gold", "high_min": "800", "mid_tag": "Silver", "mid_min": "200", "low_tag": "Bronze"},
    )
    gold, silver, bronze, _none = (feed.customer(f"c-{n}") for n in ("gold", "silver", "bronze", "none"))
    feed.order(gold, "800.00")
    feed.order(silver, "799.99")
    feed.order(bronze, "199.99")

    assert (tagged_with("Gold"), tagged_with("Silver"), tagged_with("Bronze")) == (
        {"c-gold"},
        {"c-silver"},
        {"c-bronze"},
    )

    feed.order(bronze, "0.01")  # 200.00 now: moves up a tier on this very order

    assert (tagged_with("Gold"), tagged_with("Silver"), tagged_with("Bronze")) == (
        {"c-gold"},
        {"c-silver", "c-bronze"},
        set(),
    )


# --- 13, 16: registration and carts -----------------------------------------------------------------------


def test_13_staff_by_email_domain(clock, feed):
    feed.install("staff", {"tag": "Employee", "domain": "acme.test"})

    feed.customer("c-ann", email="ann@acme.test")
    feed.customer("c-bob", email="bob@acme.test.example.com")
    feed.customer("c-carl", email="carl@notacme.test")

    assert tagged_with("Employee") == {"c-ann"}


def test_16_abandoned_cart_with_specific_products(clock, feed):
    feed.install("abandoned_cart_products", {"tag": "Left a TV", "products": ["Television"]})
    tv, lamp, active = feed.customer("c-tv"), feed.customer("c-lamp"), feed.customer("c-active")
    abandoned = (NOW - timedelta(hours=2)).isoformat()

    def cart(customer, external_id, title, abandoned_at):
        body = {
            "external_id": external_id,
            "customer_external_id": customer.external_id,
            "currency": "USD",
            "lines": [line(title, "499.00")],
            "abandoned_at": abandoned_at,
        }
        feed.post("/api/v1/carts/", body)

    cart(tv, "cart-1", "4K Television", abandoned)
    cart(lamp, "cart-2", "Desk Lamp", abandoned)
    cart(active, "cart-3", "4K Television", None)  # still shopping: not abandoned

    assert tagged_with("Left a TV") == {"c-tv"}


# --- the two reminders ------------------------------------------------------------------------------------


def test_planned_visit_reminder_only_for_customers_who_did_not_come_back(clock, feed):
    feed.install("planned_visit_reminder", {"days": 14, "subject": "See you soon", "tag": "Reminded"})
    away, back = feed.customer("c-away", email="away@example.com"), feed.customer("c-back", email="back@example.com")
    feed.order(away, "30.00")
    feed.order(back, "30.00")
    assert WorkflowRun.objects.filter(status="waiting").count() == 2

    clock.move_to(NOW + timedelta(days=7))
    feed.order(back, "30.00")  # came back during the wait
    clock.move_to(NOW + timedelta(days=14, minutes=1))
    with feed.capture(execute=True):
        engine.runs_resume_due()

    assert tagged_with("Reminded") == {"c-away"}
    assert [(message.to, message.subject) for message in mail.outbox] == [(["away@example.com"], "See you soon")]


def test_near_store_notification(clock, feed):
    feed.install("near_store", {"subject": "Hello from {{ store.name }}", "tag": "Walked by", "quiet_hours": 12})
    store = StoreFactory(name="Mitte", latitude=52.5200, longitude=13.4050, radius_m=200)
    near, far = feed.customer("c-near", email="near@example.com"), feed.customer("c-far", email="far@example.com")

    feed.post("/api/v1/locations/", {"customer_id": near.pk, "latitude": 52.5201, "longitude": 13.4051})
    feed.post("/api/v1/locations/", {"customer_id": far.pk, "latitude": 52.5300, "longitude": 13.4050})
    clock.move_to(NOW + timedelta(hours=2))
    feed.post("/api/v1/locations/", {"customer_id": near.pk, "latitude": 52.5200, "longitude": 13.4050})  # quiet

    assert tagged_with("Walked by") == {"c-near"}
    assert WorkflowRun.objects.filter(customer=near, status="skipped").count() == 1  # the quiet-period ping
    assert [(message.to, message.subject) for message in mail.outbox] == [
        (["near@example.com"], f"Hello from {store.name}")
    ]
