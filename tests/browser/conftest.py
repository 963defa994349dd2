"""Fixtures for the builder's browser tests: a logged-in marketer and a deterministic worker."""

import pytest

from tests.factories import UserFactory

PASSWORD = "pass12345"


@pytest.fixture
def sync_worker(settings):
    """Every enqueued task runs at once after its commit, in the process that enqueued it (the live server)."""
    settings.TASKS_SYNC = True
    return settings


@pytest.fixture
def marketer(db):
    return UserFactory(username="marketer", is_staff=True, is_superuser=True)


@pytest.fixture
def logged_in(live_server, page, marketer):
    """The admin login form filled in with the keyboard, as a marketer would."""
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")
    return page
