"""
The one body-size guard of the endpoints that read a raw request body themselves (webhooks from shops, mail
and SMS providers): the body is refused on its declared Content-Length before anything is read, and read at
most one byte past the limit, so a body with no or a wrong Content-Length (chunked, or under a server that does not
cut the stream at the declared length) is capped too.
"""

from __future__ import annotations

from django.http import HttpRequest


def body_read_capped(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit` bytes (the caller answers 413)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # an unreadable header: the read below still stops one byte past the limit
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body
