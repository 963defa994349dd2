"""The console's landing-page editor: real inputs, add / remove / move blocks, errors on their input, permissions."""

import re

import pytest

from apps.campaigns.landing.models import LandingPage
from apps.platform.models import AuditEntry
from tests.campaigns.landing_helpers import editor_inputs, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client):
    client.force_login(staff_user("marketer"))
    return client


def test_a_marketer_creates_a_page_from_a_template_edits_blocks_and_publishes(marketer_client):
    created = marketer_client.post(
        "/admin/campaigns/landing/new/", {"title": "Winter", "slug": "winter", "template": "signup"}
    )
    page = LandingPage.objects.get(slug="winter")
    assert created.status_code == 302 and created["Location"] == f"/admin/campaigns/landing/{page.pk}/"
    edit = f"/admin/campaigns/landing/{page.pk}/"
    html = marketer_client.get(edit).content.decode()
    assert '<label for="b-0-title">Title</label>' in html and "<textarea" in html
    types = [block["type"] for block in page.blocks]
    assert types == ["hero", "form", "faq", "footer"]

    # Move the FAQ above the form, add a FAQ question in the empty row, add a tiers block: nothing saved yet.
    fields = editor_inputs(html)
    fields.update({"op": "up:2", "b-2-items-1-question": "Can I unsubscribe?", "b-2-items-1-answer": "Any time."})
    moved = marketer_client.post(edit, fields).content.decode()
    page.refresh_from_db()
    assert [block["type"] for block in page.blocks] == types
    fields = {**editor_inputs(moved), "op": "add", "new_type": "tiers"}
    added = marketer_client.post(edit, fields).content.decode()
    fields = {**editor_inputs(added), "op": "remove:3"}  # the footer
    removed = marketer_client.post(edit, fields).content.decode()

    saved = marketer_client.post(edit, {**editor_inputs(removed), "op": "publish"})
    page.refresh_from_db()
    assert saved.status_code == 302
    assert [block["type"] for block in page.blocks] == ["hero", "faq", "form", "tiers"]
    assert page.blocks[1]["items"][1] == {"question": "Can I unsubscribe?", "answer": "Any time."}
    assert page.blocks[2]["fields"][0] == {"name": "email", "label": "E-mail", "required": True}
    assert (page.status, page.published_version.number) == ("published", 1)
    assert "Can I unsubscribe?" in marketer_client.get("/p/winter/").content.decode()
    assert ">0 sign-ups</a>" in marketer_client.get(edit).content.decode()
    assert marketer_client.get(f"/admin/campaigns/formsubmission/?page__id__exact={page.pk}").status_code == 200


def test_an_invalid_draft_is_shown_again_with_each_error_on_its_input_and_nothing_saved(marketer_client):
    marketer_client.post("/admin/campaigns/landing/new/", {"title": "W", "slug": "spring", "template": "signup"})
    page = LandingPage.objects.get(slug="spring")
    edit = f"/admin/campaigns/landing/{page.pk}/"
    fields = editor_inputs(marketer_client.get(edit).content.decode())
    before = page.blocks
    fields.update(
        {"op": "save", "b-0-title": "", "b-0-button_url": "javascript:alert(1)", "b-1-fields-1-name": "password"}
    )

    answer = marketer_client.post(edit, fields)

    html = answer.content.decode()
    page.refresh_from_db()
    assert answer.status_code == 400 and page.blocks == before
    assert re.search(
        r'id="b-0-title" name="b-0-title" value="" aria-invalid="true">\s*<p class="landing-error">'
        r"This field is required.",
        html,
    )
    assert "Give an https:// address, a path starting with /, or nothing." in html
    assert "Unknown field: use email" in html


def test_analysts_see_pages_but_cannot_change_or_publish_them(client):
    marketer = staff_user("marketer")
    client.force_login(marketer)
    client.post("/admin/campaigns/landing/new/", {"title": "W", "slug": "spring", "template": "signup"})
    page = LandingPage.objects.get(slug="spring")
    client.force_login(staff_user("analyst"))
    audit_before = AuditEntry.objects.count()

    assert client.get("/admin/campaigns/landing/").status_code == 200
    assert client.get(f"/admin/campaigns/landing/{page.pk}/").status_code == 200
    assert client.post(f"/admin/campaigns/landing/{page.pk}/", {"op": "publish", "title": "X"}).status_code == 403
    assert client.post(f"/admin/campaigns/landing/{page.pk}/unpublish/").status_code == 403
    assert (
        client.post("/admin/campaigns/landing/new/", {"title": "Y", "slug": "y", "template": "blank"}).status_code
        == 403
    )
    page.refresh_from_db()
    assert (
        page.title,
        page.status,
        LandingPage.objects.exclude(slug="invite").count(),
        AuditEntry.objects.count(),
    ) == (
        "W",
        "draft",
        1,
        audit_before,
    )
