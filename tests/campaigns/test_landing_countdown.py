"""The countdown block: exact server-rendered time left (the text without JavaScript), its ended state, the script."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from tests.campaigns.landing_helpers import published_page
from tests.campaigns.promo_helpers import campaign_with

pytestmark = pytest.mark.django_db
SCRIPT = '<script src="/static/landing/countdown.js" defer></script>'


def _text(html: str, testid: str) -> str:
    match = re.search(rf'<p[^>]*data-testid="{testid}"[^>]*>(.*?)</p>', html, re.S)
    assert match, testid
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


@pytest.fixture
def sale():
    with time_machine.travel("2026-11-30 12:00:00 +0000", tick=False):
        campaign = campaign_with(
            "Winter sale",
            incentives=[{"kind": "percent_order", "percent": Decimal("10")}],
            ends_at=timezone.now() + timedelta(days=1, hours=3, minutes=4, seconds=5),
        )
        published_page(
            blocks=[{"type": "countdown", "title": "Ends in", "campaign": campaign.pk, "ended_text": "Too late!"}]
        )
    return campaign


def test_a_running_countdown_is_rendered_exactly_with_its_seconds_and_the_script(client, sale):
    with time_machine.travel("2026-11-30 12:00:00 +0000", tick=False):
        html = client.get("/p/newsletter/").content.decode()

    assert _text(html, "countdown-count") == "1 day 3 h 4 min 5 s left"
    assert 'data-countdown data-remaining="97445"' in html
    assert re.search(r'data-testid="countdown-ended" hidden>Too late!</p>', html)
    assert html.count(SCRIPT) == 1 and "<script>" not in html  # a file, never an inline script


def test_the_days_are_plural_and_the_last_second_is_still_running(client, sale):
    with time_machine.travel("2026-11-28 11:59:00 +0000", tick=False):
        assert _text(client.get("/p/newsletter/").content.decode(), "countdown-count") == "3 days 3 h 5 min 5 s left"
    with time_machine.travel(sale.ends_at - timedelta(seconds=1), tick=False):
        html = client.get("/p/newsletter/").content.decode()
    assert _text(html, "countdown-count") == "0 days 0 h 0 min 1 s left" and 'data-remaining="1"' in html


def test_an_ended_countdown_shows_its_ended_text_without_a_script(client, sale):
    with time_machine.travel(sale.ends_at, tick=False):
        html = client.get("/p/newsletter/").content.decode()

    assert _text(html, "countdown-ended") == "Too late!"
    assert 'data-testid="countdown-ended" hidden' not in html
    assert "data-countdown-live" not in html and "data-remaining" not in html and SCRIPT not in html


def test_a_page_without_a_countdown_loads_no_script(client):
    published_page(blocks=[{"type": "hero", "title": "Hello"}])

    assert "<script" not in client.get("/p/newsletter/").content.decode()
