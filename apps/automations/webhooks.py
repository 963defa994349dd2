"""
Outbound webhooks, signed per the Standard Webhooks scheme, with SSRF protection.

Signature: headers `webhook-id`, `webhook-timestamp` (unix seconds) and
`webhook-signature: v1,<base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))>`, where the secret is
"whsec_<base64>" and the HMAC key is the base64-decoded part. The id is stable per (run, step), so a
receiver can drop a delivery repeated after a worker crash.

SSRF: https only (unless settings.AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS is False); the host is resolved once
and every address must be public (no private, loopback, link-local, reserved, multicast or unspecified
address, v4 or v6, unless settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE); the connection goes to the
vetted address (no second resolution); redirects are not followed; 5 s timeout; the response body read
is bounded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

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


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified
    )


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


def target_resolve(url: str) -> Target:
    """Parse and vet the URL; returns the one address to connect to. Raises WebhookRefused."""
    parts = urlsplit(url)
    require_https = getattr(settings, "AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS", True)
    allowed_schemes = ("https",) if require_https else ("https", "http")
    if parts.scheme not in allowed_schemes:
        raise WebhookRefused(f"Only {' or '.join(allowed_schemes)} URLs are allowed.")
    if not parts.hostname or parts.username or parts.password:
        raise WebhookRefused("The URL needs a host and no credentials.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise TransientActionError(f"cannot resolve {parts.hostname}: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))  # (an IP address string for TCP)
    if not addresses:
        raise TransientActionError(f"cannot resolve {parts.hostname}")
    if not getattr(settings, "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE", False):
        refused = [address for address in addresses if not address_allowed(address)]
        if refused:
            raise WebhookRefused(f"{parts.hostname} resolves to a non-public address ({refused[0]}).")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path, address=addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target) -> None:
        super().__init__(target.host, target.port, timeout=TIMEOUT_SECONDS)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=TIMEOUT_SECONDS, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate checked against the URL's host name, connection made to the vetted address.
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


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
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
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
