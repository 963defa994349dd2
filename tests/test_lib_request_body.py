"""The one body-size guard of the raw-body endpoints (`loyalty_site.lib.request_body`)."""

import io

import pytest
from django.http import HttpRequest

from loyalty_site.lib.request_body import body_read_capped


def request_with(body: bytes, content_length: str | None) -> tuple[HttpRequest, io.BytesIO]:
    """A request whose stream is not cut at its Content-Length (as under a server that does not do it)."""
    request = HttpRequest()
    if content_length is not None:
        request.META["CONTENT_LENGTH"] = content_length
    stream = io.BytesIO(body)
    request._stream = stream
    return request, stream


@pytest.mark.parametrize("content_length", ["10", None, ""])
def test_a_body_up_to_the_limit_is_returned_whole(content_length):
    request, _ = request_with(b"0123456789", content_length)

    assert body_read_capped(request, 10) == b"0123456789"


def test_a_declared_length_over_the_limit_is_refused_before_anything_is_read():
    request, stream = request_with(b"0123456789x", "11")

    assert body_read_capped(request, 10) is None
    assert stream.tell() == 0


@pytest.mark.parametrize("content_length", ["5", None, "", "eleven"])
def test_a_body_over_the_limit_is_refused_whatever_it_declares(content_length):
    request, stream = request_with(b"0123456789x" + b"y" * 1000, content_length)

    assert body_read_capped(request, 10) is None
    assert stream.tell() == 11  # read one byte past the limit, no further
