"""
Outbound webhooks, signed per the Standard Webhooks scheme, with SSRF protection.

Signature: headers `webhook-id`, `webhook-timestamp` (unix seconds) and
`webhook-signature: v1,<base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))>`, where the secret is
"whsec_<base64>" and the HMAC key is the base64-decoded part. The id is stable per (run, step), so a
receiver can drop a delivery repeated after a worker crash.

SSRF: https only (unless settings.AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS is False); the host is resolved once
and every address must be global (`ipaddress` `is_global`, so no private, loopback, link-local, shared
100.64.0.0/10, reserved or unspecified address; no multicast; IPv4 carried inside IPv6 — mapped, 6to4,
Teredo, NAT64 — must be global too), unless settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE; the connection
goes to the vetted address (no second resolution); redirects are not followed; 5 s timeout; the response
body read is bounded. A literal non-public address is refused already when the workflow is saved
(`url_check`). The signing secret is stored encrypted (`secret_params`); `webhook_send` gets the plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from typing import Any

from django.conf import settings

from loyalty_site.lib import outbound
from loyalty_site.lib.crypto import is_encrypted

from .registry import ActionRefused, TransientActionError

TIMEOUT_SECONDS = 5
MAX_RESPONSE_BYTES = 64 * 1024
SECRET_PREFIX = "whsec_"


class WebhookRefused(ActionRefused):
    """The URL is not allowed (scheme, address) or the receiver answered in a way we do not follow."""


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookRefused('The signing secret must look like "whsec_<base64>".')
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise WebhookRefused("The signing secret is not valid base64.") from None


def signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_verify(*, secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a delivery the way a receiver does (used by tests and documented in the README)."""
    expected = signature(
        secret=secret, message_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"]), body=body
    )
    return any(hmac.compare_digest(expected, candidate) for candidate in headers["webhook-signature"].split())


# The SSRF rules live in loyalty_site.lib.outbound (shared with the store connectors' pushes).
address_allowed = outbound.address_allowed


def url_check(url: Any) -> list[str]:
    """Save-time check of a webhook URL (ParamSpec.check): a literal non-public address or a local name
    is refused at once; names are resolved and vetted again at every delivery."""
    if not isinstance(url, str) or getattr(settings, "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE", False):
        return []
    return outbound.url_problems(url)


def secret_check(value: Any) -> list[str]:
    """Save-time check of a signing secret: "whsec_<base64>", or a stored (encrypted or redacted) one."""
    from .secret_params import REDACTED  # the definition layer sits above this module

    if not isinstance(value, str) or value == REDACTED or is_encrypted(value):
        return []
    try:
        secret_key(value)
    except WebhookRefused as error:
        return [str(error)]
    return []


Target = outbound.Target


def target_resolve(url: str) -> Target:
    """Parse and vet the URL; returns the one address to connect to. Raises WebhookRefused."""
    try:
        return outbound.target_resolve(
            url,
            require_https=getattr(settings, "AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS", True),
            allow_private=getattr(settings, "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE", False),
        )
    except outbound.TargetRefused as error:
        raise WebhookRefused(str(error)) from None
    except outbound.TargetUnreachable as error:
        raise TransientActionError(str(error)) from None


def webhook_send(*, url: str, secret: str, message_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST the signed JSON payload; 2xx -> outcome, 5xx/429/timeout -> TransientActionError, else refused."""
    target = target_resolve(url)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "loyalty-site-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret=secret, message_id=message_id, timestamp=timestamp, body=body),
    }
    connection_class = outbound.PinnedHTTPSConnection if target.scheme == "https" else outbound.PinnedHTTPConnection
    connection = connection_class(target)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        raise TransientActionError(f"webhook to {target.host} failed: {type(error).__name__}: {error}") from None
    finally:
        connection.close()
    excerpt = answer[:500].decode("utf-8", "replace")
    if 300 <= status < 400:
        raise WebhookRefused(f"the receiver answered {status}; redirects are not followed")
    if status >= 500 or status == 429:
        raise TransientActionError(f"the receiver answered {status}")
    if status >= 400:
        raise WebhookRefused(f"the receiver answered {status}: {excerpt}")
    return {"status": status, "webhook_id": message_id, "response": excerpt}
