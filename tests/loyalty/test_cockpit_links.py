"""
Cockpit links expire, die when support revokes them, cannot be forged from the public referral code;
members ask for a fresh one by e-mail; cockpit pages are not cached; referral pages show only what the
member chose.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core import mail, signing
from django.core.cache import cache

from apps.loyalty import services
from apps.loyalty.cockpit import cockpit_path
from apps.loyalty.models import Membership
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def member():
    program = program_make(name="Coffee Club")
    membership, _ = services.member_join(
        customer=CustomerFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com"), program=program
    )
    return membership


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def test_a_link_works_for_30_days_and_a_31_day_old_one_is_refused(client, member):
    with time_machine.travel(T0, tick=False):
        path = cockpit_path(member)

    with time_machine.travel(T0 + timedelta(days=29, hours=23), tick=False):
        assert client.get(path).status_code == 200
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        assert client.get(path).status_code == 404
        assert client.post(path + "redeem/1/").status_code == 404


def test_the_link_lifetime_is_configurable(client, member, settings):
    settings.LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS = 2
    with time_machine.travel(T0, tick=False):
        path = cockpit_path(member)

    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        assert client.get(path).status_code == 404


def test_support_revokes_a_members_links_with_the_admin_action(client, member):
    old_path = cockpit_path(member)
    support = UserFactory(username="support", is_staff=True, is_superuser=False)
    support.user_permissions.add(
        Permission.objects.get(codename="view_membership"),
        Permission.objects.get(codename="change_membership"),
        Permission.objects.get(codename="rotate_cockpit_link"),
    )
    client.force_login(support)

    response = client.post(
        "/admin/loyalty/membership/", {"action": "revoke_cockpit_links", "_selected_action": [member.pk]}, follow=True
    )

    assert response.status_code == 200
    assert "Cockpit links revoked for 1 member(s)." in response.content.decode()
    client.logout()
    assert client.get(old_path).status_code == 404
    member.refresh_from_db()
    assert client.get(cockpit_path(member)).status_code == 200


def test_staff_without_the_permission_cannot_revoke_and_nothing_changes(client, member):
    nonce = member.cockpit_nonce
    clerk = UserFactory(username="clerk", is_staff=True, is_superuser=False)
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_membership"), Permission.objects.get(codename="change_membership")
    )
    client.force_login(clerk)

    listing = client.get("/admin/loyalty/membership/")
    response = client.post(
        "/admin/loyalty/membership/", {"action": "revoke_cockpit_links", "_selected_action": [member.pk]}
    )

    assert "revoke_cockpit_links" not in listing.content.decode()
    assert response.status_code in (200, 302)
    assert Membership.objects.get(pk=member.pk).cockpit_nonce == nonce


def test_a_link_forged_from_the_public_referral_code_fails(client, member, settings):
    # The old token format ({membership id, referral code}) signed with the key scripts/run used to ship,
    # and the same claims signed with this install's own key: neither opens the cockpit.
    public_key = "dev-only-insecure-secret-key-change-me"
    claims = {"m": member.pk, "c": member.referral_code}
    forged_with_public_key = signing.dumps(claims, key=public_key, salt="loyalty.cockpit", compress=True)
    forged_new_salt = signing.dumps(
        {"m": member.pk, "n": member.referral_code}, key=public_key, salt="loyalty.cockpit.v2", compress=True
    )
    old_format = signing.dumps(claims, salt="loyalty.cockpit", compress=True)
    guessed_nonce = signing.dumps({"m": member.pk, "n": member.referral_code}, salt="loyalty.cockpit.v2")

    for token in (forged_with_public_key, forged_new_salt, old_format, guessed_nonce):
        assert client.get(f"/me/{token}/").status_code == 404
    assert public_key != settings.SECRET_KEY


def test_cockpit_pages_are_never_cached(client, member):
    response = client.get(cockpit_path(member))

    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    assert "no-store" in client.get("/me/")["Cache-Control"]


def test_a_member_gets_a_fresh_link_by_email_and_a_stranger_gets_the_same_answer(client, member):
    known = client.post("/me/", {"email": "ADA@example.com"})
    unknown = client.post("/me/", {"email": "nobody@example.com"})

    assert (known.status_code, unknown.status_code) == (200, 200)
    assert known.content == unknown.content.replace(b"nobody@example.com", b"ADA@example.com")
    assert "If this address belongs to a member, we have sent it a link." in known.content.decode()
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    link = next(line for line in message.body.splitlines() if line.startswith("Coffee Club: "))
    path = link.removeprefix("Coffee Club: http://testserver")
    assert client.get(path).status_code == 200


def test_link_requests_are_rate_limited_per_client_and_per_address(client, member, settings):
    settings.LOYALTY_COCKPIT_LINK_REQUESTS_PER_HOUR = 3
    answers = [client.post("/me/", {"email": "ada@example.com"}).status_code for _ in range(4)]
    other_client = client.post("/me/", {"email": "ada@example.com"}, REMOTE_ADDR="203.0.113.9")

    assert answers == [200, 200, 200, 429]
    assert other_client.status_code == 429  # the address is limited too
    assert len(mail.outbox) == 3


def test_the_referral_page_shows_nothing_personal_unless_the_member_chose_their_first_name(client, member):
    landing = f"/me/r/{member.referral_code}/"

    hidden = client.get(landing).content.decode()
    client.post(cockpit_path(member) + "referral-name/", {"show": "1"})
    shown = client.get(landing).content.decode()

    assert "A friend invited you to Coffee Club" in hidden
    assert "Ada" not in hidden
    assert "Ada invited you to Coffee Club" in shown
    for personal in ("Lovelace", "ada@example.com"):
        assert personal not in hidden
        assert personal not in shown
