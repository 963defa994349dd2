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
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

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


NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: IPv4-mapped, 6to4 (2002::/16), Teredo (both ends), NAT64."""
    embedded: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        embedded.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:
        embedded.extend(ip.teredo)
    if ip in NAT64_PREFIX:
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return embedded


def address_allowed(address: str) -> bool:
    """
    Only globally routable addresses (`is_global`: no private, loopback, link-local, shared 100.64.0.0/10,
    reserved, documentation or benchmarking range), and no multicast; an IPv6 address that carries an
    IPv4 one (mapped, 6to4, Teredo, NAT64) must carry a global one too.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += _embedded_ipv4(ip)
    return all(candidate.is_global and not candidate.is_multicast for candidate in candidates)


def _literal_address(host: str) -> str | None:
    """The address a host name spells literally: IPv6, dotted IPv4, or the legacy forms a resolver
    accepts (`127.1`, `0x7f.0.0.1`, `2130706433`); None for a real name."""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def url_check(url: Any) -> list[str]:
    """Save-time check of a webhook URL (ParamSpec.check): a literal non-public address or a local name
    is refused at once; names are resolved and vetted again at every delivery."""
    if not isinstance(url, str) or getattr(settings, "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE", False):
        return []
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ["This URL cannot be parsed."]
    if host == "localhost" or host.endswith(".localhost"):
        return ["The URL must point to a public address, not this machine."]
    literal = _literal_address(host) if host else None
    if literal is not None and not address_allowed(literal):
        return [f"The URL must point to a public address ({literal} is not)."]
    return []


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
