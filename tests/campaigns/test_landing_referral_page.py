"""
The referral page /me/r/<code>/ never writes on GET: a migration installs the default page, a GET without a
published referral page draws the referral template in memory, and only a sign-up (POST) or an explicit staff
action publishes the default page.
"""

import importlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.apps import apps as global_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.campaigns.landing import services
from apps.campaigns.landing.models import FormSubmission, LandingPage, LandingPageVersion
from apps.loyalty import services as loyalty_services
from apps.platform.models import AuditEntry
from tests.campaigns.landing_helpers import staff_user
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cache_cleared")]
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)
migration = importlib.import_module("apps.campaigns.migrations.0011_default_referral_page")


@pytest.fixture
def referrer():
    program_make(name="Coffee Club", referrer_bonus=50, referee_bonus=20)
    membership, _ = loyalty_services.member_join(customer=CustomerFactory(first_name="Ada", email="ada@example.com"))
    loyalty_services.referral_name_set(membership=membership, show=True)
    return membership


def _rows() -> tuple[int, int, int, int]:
    return (
        LandingPage.objects.count(),
        LandingPageVersion.objects.count(),
        AuditEntry.objects.count(),
        FormSubmission.objects.count(),
    )


def _writes(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if WRITES.match(query["sql"])]


def test_a_get_without_a_published_referral_page_draws_the_default_and_writes_no_rows(client, referrer):
    LandingPage.objects.all().delete()  # no referral page at all (the migration's was removed)
    before = _rows()

    with CaptureQueriesContext(connection) as queries:
        first = client.get(f"/me/r/{referrer.referral_code}/")
        second = client.get(f"/me/r/{referrer.referral_code}/")

    assert (first.status_code, second.status_code) == (200, 200)
    html = first.content.decode()
    assert "Ada invited you to Coffee Club" in html and "20 welcome points" in html and 'name="email"' in html
    assert _writes(queries) == []
    assert _rows() == before == (0, 0, 0, 0)


def test_a_get_of_an_offline_referral_page_draws_the_default_without_republishing_it(client, referrer):
    page = services.landing_referral_page_ensure()
    services.landing_page_unpublish(page=page)
    before = _rows()

    with CaptureQueriesContext(connection) as queries:
        answer = client.get(f"/me/r/{referrer.referral_code}/")

    assert answer.status_code == 200 and "Ada invited you to Coffee Club" in answer.content.decode()
    assert _writes(queries) == []
    assert _rows() == before
    page.refresh_from_db()
    assert page.status == "draft"


def test_a_get_shows_the_latest_published_referral_page_and_writes_nothing(client, referrer):
    page = services.landing_referral_page_ensure()
    services.landing_page_save(
        page=page,
        slug=page.slug,
        title="Join {inviter} at {program}",
        template="referral",
        blocks=[{"type": "hero", "title": "Hello from {inviter}"}, *page.blocks[1:]],
    )
    services.landing_page_publish(page=page)
    before = _rows()

    with CaptureQueriesContext(connection) as queries:
        html = client.get(f"/me/r/{referrer.referral_code}/").content.decode()

    assert "<title>Join Ada at Coffee Club</title>" in html and "Hello from Ada" in html
    assert _writes(queries) == []
    assert _rows() == before


def test_the_migration_installs_one_published_default_page_and_is_idempotent():
    LandingPage.objects.all().delete()

    migration.default_referral_page_install(global_apps, None)
    migration.default_referral_page_install(global_apps, None)

    page = LandingPage.objects.get()
    assert (page.slug, page.template, page.status, page.published_version.number) == (
        "invite",
        "referral",
        "published",
        1,
    )
    assert page.published_version.blocks == page.blocks
    assert [block["type"] for block in page.blocks] == ["hero", "referral", "form", "footer"]
    assert (
        services.landing_page_errors(slug=page.slug, title=page.title, template=page.template, blocks=page.blocks) == {}
    )


def test_the_migration_leaves_an_existing_referral_page_alone():
    LandingPage.objects.all().delete()
    services.landing_page_save(slug="friends", title="Friends", template="referral", blocks=[])

    migration.default_referral_page_install(global_apps, None)

    assert list(LandingPage.objects.values_list("slug", "status")) == [("friends", "draft")]


def test_a_sign_up_with_no_published_referral_page_publishes_the_default_then_records_the_submission(
    client, referrer, settings
):
    LandingPage.objects.all().delete()
    path = f"/me/r/{referrer.referral_code}/"
    started = re.search(r'name="started" value="([^"]+)"', client.get(path).content.decode()).group(1)
    assert LandingPage.objects.count() == 0

    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        answer = client.post(
            path, {"started": started, "website": "", "email": "bob@example.com", "consent_email": "on"}
        )

    assert answer.status_code == 302
    page = LandingPage.objects.get()
    assert (page.slug, page.status, page.published_version.number) == ("invite", "published", 1)
    submission = FormSubmission.objects.get()
    assert (submission.page_id, submission.referral_code) == (page.pk, referrer.referral_code)


def test_the_console_offers_the_default_referral_page_to_who_may_publish_and_refuses_others(client):
    LandingPage.objects.all().delete()
    client.force_login(staff_user("analyst"))
    before = _rows()
    listing = client.get("/admin/campaigns/landing/").content.decode()
    assert "No referral page is published" in listing and "landing-referral-install" not in listing

    assert client.post("/admin/campaigns/landing/referral/").status_code == 403
    assert _rows() == before

    client.force_login(staff_user("marketer"))
    audit_before = AuditEntry.objects.count()
    assert 'data-testid="landing-referral-install"' in client.get("/admin/campaigns/landing/").content.decode()
    answer = client.post("/admin/campaigns/landing/referral/")

    page = LandingPage.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/admin/campaigns/landing/{page.pk}/"
    assert (page.slug, page.status, page.published_version.number, page.updated_by.username) == (
        "invite",
        "published",
        1,
        "u-marketer",
    )
    assert list(AuditEntry.objects.order_by("pk")[audit_before:].values_list("action", flat=True)) == [
        "created",
        "published",
    ]
    assert client.post("/admin/campaigns/landing/referral/").status_code == 302  # again: nothing new
    assert LandingPageVersion.objects.count() == 1
    assert client.get("/admin/campaigns/landing/referral/").status_code == 405
