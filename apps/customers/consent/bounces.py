"""
The generic bounce/complaint receiver: `POST /hooks/bounces/`, for a mail or SMS provider (or a relay in
front of it) that reports hard bounces and spam complaints. Authenticated by an HMAC-SHA256 of the raw body
with CONSENT_BOUNCE_WEBHOOK_SECRET, hex, in `X-Loyalty-Signature: sha256=<hex>` (no secret set: the endpoint
answers 404). The body is capped before it is read (16 KiB) and holds at most 100 events:

    {"events": [{"address": "ana@example.com", "channel": "email", "type": "hard_bounce"}, ...]}

`type` is `hard_bounce` or `complaint` (soft bounces are the sender's retries, not a suppression). Each event
puts the address on the suppression list (idempotent). A bad event is a 400 naming `events[i].field`, and
then nothing is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from loyalty_site.lib.request_body import body_read_capped

from . import services
from .choices import Channel, SuppressionReason

MAX_BODY_BYTES = 16 * 1024
MAX_EVENTS = 100
TYPES = (SuppressionReason.HARD_BOUNCE.value, SuppressionReason.COMPLAINT.value)


def _refuse(status: int, error: str, message: str, errors: list[dict[str, str]] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"error": error, "message": message}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def signature_for(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _events(payload: Any) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(clean events, errors with paths)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        return [], [{"path": "events", "message": 'Send {"events": [...]}.'}]
    items = payload["events"]
    if not items or len(items) > MAX_EVENTS:
        return [], [{"path": "events", "message": f"Between 1 and {MAX_EVENTS} events."}]
    clean, errors = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"path": f"events[{index}]", "message": "An object."})
            continue
        address, channel, kind = item.get("address"), item.get("channel", Channel.EMAIL), item.get("type")
        if not isinstance(address, str) or not address.strip() or len(address) > 254:
            errors.append({"path": f"events[{index}].address", "message": "An address (at most 254 characters)."})
        if channel not in (Channel.EMAIL, Channel.SMS):
            errors.append({"path": f"events[{index}].channel", "message": "email or sms."})
        if kind not in TYPES:
            errors.append({"path": f"events[{index}].type", "message": "hard_bounce or complaint."})
        clean.append({"address": str(address), "channel": str(channel), "type": str(kind)})
    return clean, errors


@csrf_exempt
@require_POST
def bounce_webhook(request: HttpRequest) -> JsonResponse:
    """Public endpoint authorised by its HMAC signature alone (no user, no permission applies)."""
    secret = getattr(settings, "CONSENT_BOUNCE_WEBHOOK_SECRET", "")
    if not secret:
        return _refuse(404, "not_found", "The bounce endpoint is not configured.")
    body = body_read_capped(request, MAX_BODY_BYTES)
    if body is None:
        return _refuse(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    if not hmac.compare_digest(request.headers.get("X-Loyalty-Signature", ""), signature_for(body, secret)):
        return _refuse(401, "invalid_signature", "The signature does not match.")
    try:
        payload = json.loads(body)
    except ValueError:
        return _refuse(400, "validation_error", "The body is not JSON.", [{"path": "", "message": "Not JSON."}])
    events, errors = _events(payload)
    if errors:
        return _refuse(400, "validation_error", "Some events are not valid; nothing was stored.", errors)
    try:
        with transaction.atomic():
            for event in events:
                services.suppression_add(
                    address=event["address"], channel=event["channel"], reason=event["type"], source="bounce_webhook"
                )
    except ValidationError as error:
        messages = [{"path": "events", "message": message} for message in error.messages]
        return _refuse(400, "validation_error", "Some events are not valid; nothing was stored.", messages)
    return JsonResponse({"status": "accepted", "suppressed": len(events)})
