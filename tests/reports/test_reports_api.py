"""The report endpoints and pages: permissions (403, nothing changes), token scopes, bad input, CSV."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.platform.services import api_token_create
from apps.reports import services
from apps.reports.models import DailyFigures, RollupState

from ..factories import UserFactory
from .helpers import at, customer, order

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst():
    user = UserFactory(username="analyst", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name="analyst"))
    return user


@pytest.fixture
def support():
    user = UserFactory(username="support", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name="support"))
    return user


@pytest.fixture
def data():
    with time_machine.travel(at("2026-03-10"), tick=False):
        order(customer(), "40.00", "2026-03-02")
        services.rollups_refresh()


def bearer(user, scopes):
    _token, raw = api_token_create(user=user, name="t", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_dashboard_api_answers_a_reports_token(analyst, data):
    response = bearer(analyst, ["reports"]).get("/api/v1/reports/dashboard/?start=2026-03-01&end=2026-03-07")
    assert response.status_code == 200
    body = response.json()
    assert body["period"] == {"start": "2026-03-01", "end": "2026-03-07"}
    assert body["previous_period"] == {"start": "2026-02-22", "end": "2026-02-28"}
    figures = {figure["key"]: figure for figure in body["figures"]}
    assert figures["revenue_non_members"]["value"] == "40.00"
    assert body["tables"][0]["rows"][1]["revenue_non_members"] == "40.00"


@pytest.mark.parametrize("path", ["dashboard", "loyalty", "campaigns", "cohorts"])
def test_every_report_is_refused_without_the_permission_and_changes_nothing(support, data, path):
    before = list(DailyFigures.objects.values())
    client = APIClient()
    client.force_authenticate(support)
    response = client.get(f"/api/v1/reports/{path}/")
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert list(DailyFigures.objects.values()) == before
    page = APIClient()
    page.force_login(support)
    assert page.get(f"/admin/reports/{'' if path == 'dashboard' else path + '/'}").status_code == 403


def test_a_token_without_the_reports_scope_is_refused(analyst, data):
    response = bearer(analyst, ["ingest"]).get("/api/v1/reports/dashboard/")
    assert response.status_code == 403
    assert response.json()["error"] == "missing_scope"


def test_reports_are_read_only_for_tokens(analyst):
    assert bearer(analyst, ["reports"]).post("/api/v1/reports/dashboard/", {}, format="json").status_code in (403, 405)


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("start=2026-02-30", "start"),
        ("end=yesterday", "end"),
        ("start=2026-03-05&end=2026-03-01", "start"),
        ("start=1990-01-01&end=2026-01-01", "start"),
        ("start=0001-01-01", "start"),
    ],
)
def test_bad_dates_are_a_400_naming_the_field(analyst, query, path):
    response = bearer(analyst, ["reports"]).get(f"/api/v1/reports/dashboard/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["path"] == path or body.get("path") == path, body


def test_the_dashboard_page_and_a_csv_export(analyst, data):
    client = APIClient()
    client.force_login(analyst)
    page = client.get("/admin/reports/?start=2026-03-01&end=2026-03-07")
    assert page.status_code == 200
    assert b"Revenue from non-members" in page.content
    assert b"vendor/chart.js/chart.umd.min.js" in page.content
    csv = client.get("/admin/reports/?start=2026-03-01&end=2026-03-03&csv=daily")
    assert csv.status_code == 200
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("Day,Revenue, members") or lines[0].startswith('Day,"Revenue, members"')
    assert lines[2].split(",")[0] == "2026-03-02"
    assert client.get("/admin/reports/?csv=nope").status_code == 400
    assert client.get("/admin/reports/?start=nope").status_code == 400


def test_the_rebuild_command_prints_what_it_did(data, capsys):
    from django.core.management import call_command

    call_command("reports_rebuild")
    assert "days recomputed" in capsys.readouterr().out
    assert RollupState.objects.get().last_days >= 1
    assert DailyFigures.objects.get(day=date(2026, 3, 2)).revenue_non_members == Decimal("40.00")


def test_the_console_home_shows_the_dashboard_only_to_those_who_may_read_reports(analyst, support):
    with time_machine.travel(at("2026-03-10"), tick=False):
        order(customer(), "40.00", "2026-03-02")
        services.rollups_refresh()
        client = APIClient()
        client.force_login(analyst)
        home = client.get("/admin/")
        client.force_login(support)
        other = client.get("/admin/")

    assert home.status_code == 200
    assert b'data-testid="home-dashboard"' in home.content
    assert b'data-key="revenue_non_members"' in home.content and b"$40.00" in home.content
    assert b'href="/admin/reports/?start=2026-02-09&amp;end=2026-03-10&amp;csv=daily"' in home.content
    assert other.status_code == 200
    assert b"home-dashboard" not in other.content and b"rp-report" not in other.content
