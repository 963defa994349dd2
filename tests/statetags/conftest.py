"""
Fixtures of the state-tag, account-state and preferred-currency tests: the integrator's API client shared with
the gallery-template tests (`tests/integrator.py`), whose every call runs the worker for what it enqueued.
"""

import pytest
import time_machine

from tests.factories import UserFactory
from tests.integrator import NOW, Feed, feed_for, tagged_with, tags

__all__ = ["NOW", "Feed", "tagged_with", "tags"]


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def shop_user(db):
    return UserFactory()


@pytest.fixture
def feed(shop_user, settings, django_capture_on_commit_callbacks) -> Feed:
    settings.TASKS_SYNC = True
    return feed_for(shop_user, django_capture_on_commit_callbacks)
