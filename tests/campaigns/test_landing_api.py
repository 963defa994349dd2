"""The landing-pages API resource: blocks validated with paths, publish, scope and permission refusals."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.campaigns.landing.models import LandingPage, LandingPageVersion
from apps.platform.services import api_token_create
from tests.campaigns.landing_helpers import form_block
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(role: str, scopes: list[str]) -> APIClient:
    user = UserFactory(username=f"api-{role}-{'-'.join(scopes)}", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    _, raw = api_token_create(user=user, scopes=scopes, name=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_marketer_token_creates_edits_and_publishes_a_page():
    api = _client("marketer", ["campaigns"])

    created = api.post(
        "/api/v1/landing-pages/", {"slug": "spring", "title": "Spring", "template": "signup"}, format="json"
    )
    page_id = created.json()["id"]
    changed = api.patch(
        f"/api/v1/landing-pages/{page_id}/",
        {"blocks": [{"type": "hero", "title": "Spring sale"}, form_block()]},
        format="json",
    )
    published = api.post(f"/api/v1/landing-pages/{page_id}/publish/")

    assert created.status_code == 201, created.json()
    assert [block["type"] for block in created.json()["blocks"]] == ["hero", "form", "faq", "footer"]
    assert changed.status_code == 200 and changed.json()["blocks"][0] == {"type": "hero", "title": "Spring sale"}
    assert published.status_code == 201 and published.json()["number"] == 1
    assert api.get(f"/api/v1/landing-pages/{page_id}/").json()["published_version"] == 1
    assert APIClient().get("/p/spring/").status_code == 200


def test_bad_blocks_are_a_400_naming_each_path_and_nothing_is_written():
    api = _client("marketer", ["campaigns"])

    answer = api.post(
        "/api/v1/landing-pages/",
        {
            "slug": "x1",
            "title": "X",
            "blocks": [{"type": "hero"}, {"type": "faq", "items": [{"question": "Q"}]}, "not a block"],
        },
        format="json",
    )

    assert answer.status_code == 400
    paths = {error["path"] for error in answer.json()["errors"]}
    assert paths == {"blocks[0].title", "blocks[1].items[0].answer", "blocks[2].type"}
    assert not LandingPage.objects.exclude(slug="invite").exists()  # (the migration's referral page aside)


def test_an_analyst_or_an_ingest_token_is_refused_with_a_403_and_nothing_changes():
    marketer = _client("marketer", ["campaigns"])
    page_id = marketer.post(
        "/api/v1/landing-pages/", {"slug": "keep", "title": "Keep", "template": "blank"}, format="json"
    ).json()["id"]
    analyst = _client("analyst", ["campaigns"])
    shop = _client("integration", ["ingest"])

    answers = [
        analyst.patch(f"/api/v1/landing-pages/{page_id}/", {"title": "Changed"}, format="json"),
        analyst.post(f"/api/v1/landing-pages/{page_id}/publish/"),
        analyst.post("/api/v1/landing-pages/", {"slug": "new", "title": "New"}, format="json"),
        shop.get("/api/v1/landing-pages/"),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 403, 403]
    assert answers[1].json()["message"] == "Missing permission: campaigns.publish_landingpage."
    assert answers[3].json()["error"] == "missing_scope"
    assert analyst.get("/api/v1/landing-pages/").status_code == 200
    assert list(LandingPage.objects.exclude(slug="invite").values_list("slug", "title", "status")) == [
        ("keep", "Keep", "draft")
    ]
    assert not LandingPageVersion.objects.exclude(page__slug="invite").exists()
