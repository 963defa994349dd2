"""
Django's message middleware with the storage made only when a request uses it (`MIDDLEWARE` in
loyalty_site/settings/base.py).

`django.contrib.messages.middleware.MessageMiddleware` builds the storage for every request: a FallbackStorage
with its cookie storage (a cookie signer each time: the signing key looked up and a Signer built) and its session
storage. API requests made with a token never read or add a message, and an untouched storage stores nothing at
the response — so here the storage is made on first use (`messages.success(...)`, `{% for message in messages %}`,
`get_messages`) and an untouched one is skipped at the response. A request that uses messages gets exactly what
Django's middleware gives it.
"""

from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty


class MessageMiddleware(_MessageMiddleware):
    """`django.contrib.messages.middleware.MessageMiddleware`, its storage made on first use."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response  # never used: nothing was read or added, nothing to store
        return super().process_response(request, response)
