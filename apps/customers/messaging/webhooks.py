"""
The provider tracking receiver: `POST /hooks/anymail/<esp>/tracking/`, django-anymail's tracking webhook of
each provider it supports (postmark, sendgrid, mailgun, brevo, amazon_ses, …) behind one gate.

Authenticated the way anymail authenticates webhooks: HTTP basic auth with `ANYMAIL["WEBHOOK_SECRET"]`
("user:password", or a list while rotating), checked here in constant time before anything is parsed — a
wrong or missing secret is a 403 and changes nothing — then anymail's view runs its own validators too (the
provider's signature, where the provider signs its webhooks, e.g. Mailgun's webhook signing key; a bad
signature is also a 403). No secret configured: the endpoint answers 404 (anymail would accept unauthenticated
posts with a warning; we never do). The body is capped before it is read. The events of one post are recorded
in one transaction (`tracking.delivery_tracking_record`): a post that cannot be parsed stores nothing.
"""

from __future__ import annotations

from typing import Any

from anymail import signals as anymail_signals  # type: ignore[import-untyped]  # no py.typed
from anymail.exceptions import AnymailWebhookValidationFailure  # type: ignore[import-untyped]
from anymail.urls import urlpatterns as anymail_urlpatterns  # type: ignore[import-untyped]
from anymail.utils import get_anymail_setting, get_request_basic_auth  # type: ignore[import-untyped]
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from loyalty_site.lib.request_body import body_read_capped

from .tracking import TrackingEvent, delivery_tracking_record

MAX_BODY_BYTES = 5 * 1024 * 1024  # providers batch events (SendGrid, Mailgun): generous, but bounded
# esp -> anymail's tracking view, from anymail's own URL patterns ("postmark_tracking_webhook" -> postmark)
TRACKING_VIEWS: dict[str, Any] = {
    pattern.name.removesuffix("_tracking_webhook"): pattern.callback
    for pattern in anymail_urlpatterns
    if getattr(pattern, "name", "") and pattern.name.endswith("_tracking_webhook")
}


def _refuse(status: int, error: str, message: str) -> JsonResponse:
    return JsonResponse({"error": error, "message": message}, status=status)


def _secrets() -> list[str]:
    configured = get_anymail_setting("webhook_secret", default=[])
    if isinstance(configured, str):
        configured = [configured] if configured else []
    return [str(secret) for secret in configured if secret]


@receiver(anymail_signals.tracking, dispatch_uid="customers.messaging.tracking")
def _tracking_received(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail's tracking signal, sent by the view below for each parsed event: recorded by the service."""
    delivery_tracking_record(
        event=TrackingEvent(
            event_type=str(event.event_type or "unknown"),
            message_id=str(event.message_id or ""),
            recipient=str(event.recipient or ""),
            timestamp=event.timestamp,
            reject_reason=str(event.reject_reason or ""),
            description=str(event.description or ""),
            esp=str(esp_name or ""),
        )
    )


@csrf_exempt
@require_http_methods(["POST", "HEAD"])
def anymail_tracking(request: HttpRequest, esp: str) -> HttpResponse:
    """Public endpoint authorised by anymail's webhook secret (basic auth) alone: no user, no permission applies."""
    view = TRACKING_VIEWS.get(esp)
    if view is None:
        return _refuse(
            404, "not_found", f"No tracking webhook for {esp[:40]!r}; one of {', '.join(sorted(TRACKING_VIEWS))}."
        )
    secrets = _secrets()
    if not secrets:
        return _refuse(404, "not_found", "The tracking endpoint is not configured (ANYMAIL WEBHOOK_SECRET).")
    given = get_request_basic_auth(request) or ""
    if not any(constant_time_compare(given, secret) for secret in secrets):
        response = _refuse(403, "forbidden", "Wrong or missing webhook secret (HTTP basic auth).")
        response["WWW-Authenticate"] = 'Basic realm="tracking"'
        return response
    if request.method == "HEAD":  # some providers check the address when the webhook is configured
        return HttpResponse()
    body = body_read_capped(request, MAX_BODY_BYTES)
    if body is None:
        return _refuse(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    request._body = body  # (read once, capped; anymail's view reads request.body)
    try:
        with transaction.atomic():
            return view(request)  # validates (signatures), parses, sends anymail's tracking signal per event
    except AnymailWebhookValidationFailure as error:
        return _refuse(403, "forbidden", str(error)[:200])
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        return _refuse(400, "validation_error", f"The provider's payload could not be read: {type(error).__name__}.")
