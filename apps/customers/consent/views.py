"""
Public consent pages, reached from links in messages (no login): the double opt-in confirmation and the
unsubscribe page. Both are authorised by a signed token alone. A GET only shows a page with a button (mail
scanners that prefetch links change nothing); the POST acts. The unsubscribe POST is also RFC 8058's
one-click endpoint (`List-Unsubscribe=One-Click` posted by the mailbox provider), so it takes no CSRF token.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import services
from .choices import Channel, Purpose

MAX_TOKEN_LENGTH = 512


def _channel_label(channel: str, purpose: str) -> str:
    return f"{Purpose(purpose).label.lower()} {Channel(channel).label.lower()}"


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Public (token-authorised): GET a confirm page, POST (one-click or the button) unsubscribes."""
    claims = services.unsubscribe_claims(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if claims is None:
        return render(request, "consent/unsubscribe.html", {"state": "invalid"}, status=404)
    _customer_id, channel, purpose = claims
    context = {"what": _channel_label(channel, purpose)}
    if request.method == "GET":
        return render(request, "consent/unsubscribe.html", {**context, "state": "ask"})
    state, _customer = services.unsubscribe_by_token(token=token)
    return render(
        request, "consent/unsubscribe.html", {**context, "state": state}, status=404 if state == "invalid" else 200
    )


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Public (token-authorised): GET shows the confirm button, POST confirms the double opt-in."""
    claims = services.confirm_claims(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if claims is None:
        return render(request, "consent/confirm.html", {"state": "invalid"}, status=404)
    if request.method == "GET":
        return render(request, "consent/confirm.html", {"state": "ask"})
    state, _consent = services.consent_confirm(token=token)
    return render(request, "consent/confirm.html", {"state": state}, status=404 if state == "invalid" else 200)
