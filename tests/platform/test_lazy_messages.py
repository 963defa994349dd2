"""
Messages are stored only when a request uses them (loyalty_site/lib/messages.py); a request that adds one still
shows it on the next page, and an API request builds no storage at all.
"""

import pytest
from django.contrib import messages
from django.contrib.messages.storage import default_storage
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.functional import empty

from loyalty_site.lib.messages import MessageMiddleware

pytestmark = pytest.mark.django_db


def with_session(request):
    from django.contrib.sessions.backends.db import SessionStore

    request.session = SessionStore()
    return request


def test_a_request_that_uses_no_message_builds_no_storage_and_stores_nothing():
    request = with_session(RequestFactory().get("/api/v1/customers/"))

    response = MessageMiddleware(lambda request: HttpResponse("{}"))(request)

    assert request._messages._wrapped is empty
    assert response.cookies == {}
    assert request.session.modified is False


def test_a_message_added_is_stored_and_read_by_the_next_request():
    def add(request):
        messages.success(request, "Saved.")
        return HttpResponse("ok")

    first = with_session(RequestFactory().post("/admin/"))
    response = MessageMiddleware(add)(first)
    second = RequestFactory().get("/admin/")
    second.COOKIES = {name: morsel.value for name, morsel in response.cookies.items()}
    second.session = first.session
    seen: list[str] = []

    def read(request):
        seen.extend(str(message) for message in messages.get_messages(request))
        return HttpResponse("ok")

    MessageMiddleware(read)(second)

    assert seen == ["Saved."]


def test_the_level_can_be_set_through_the_lazy_storage():
    request = with_session(RequestFactory().get("/admin/"))
    MessageMiddleware(lambda request: HttpResponse("ok")).process_request(request)

    messages.set_level(request, messages.WARNING)
    messages.info(request, "below the level")

    assert request._messages.level == messages.WARNING
    assert list(request._messages) == []
    assert type(request._messages._wrapped) is type(default_storage(request))
