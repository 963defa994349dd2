"""
Outbound HTTP to addresses that users typed (workflow webhooks, a connected shop's API), with SSRF protection.
Model-free: the callers pass their own settings (`require_https`, `allow_private`).

The host is resolved once and every address must be global (`ipaddress` `is_global`: no private, loopback,
link-local — 169.254.169.254 —, shared 100.64.0.0/10, reserved, documentation or unspecified address; no
multicast; an IPv4 address carried inside IPv6 — mapped, 6to4, Teredo, NAT64 — must be global too) unless
`allow_private`; the connection goes to that vetted address (no second resolution; TLS still checks the host
name); redirects are never followed; the answer read is bounded.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 5
MAX_RESPONSE_BYTES = 64 * 1024


class TargetRefused(Exception):
    """The URL is not allowed (scheme, credentials, a non-public address)."""


class TargetUnreachable(Exception):
    """The host cannot be resolved or reached now (worth retrying later)."""


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
    """Only globally routable, non-multicast addresses (and the IPv4 an IPv6 address carries must be too)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += _embedded_ipv4(ip)
    return all(candidate.is_global and not candidate.is_multicast for candidate in candidates)


def literal_address(host: str) -> str | None:
    """The address a host name spells literally: IPv6, dotted IPv4, or the legacy forms a resolver accepts
    (`127.1`, `0x7f.0.0.1`, `2130706433`); None for a real name."""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def url_problems(url: str) -> list[str]:
    """Save-time check: a literal non-public address or a local name is refused at once (names are resolved
    and vetted again at every request)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ["This URL cannot be parsed."]
    if host == "localhost" or host.endswith(".localhost"):
        return ["The URL must point to a public address, not this machine."]
    literal = literal_address(host) if host else None
    if literal is not None and not address_allowed(literal):
        return [f"The URL must point to a public address ({literal} is not)."]
    return []


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


def target_resolve(url: str, *, require_https: bool, allow_private: bool) -> Target:
    """Parse and vet the URL; returns the one address to connect to. Raises TargetRefused / TargetUnreachable."""
    parts = urlsplit(url)
    allowed_schemes = ("https",) if require_https else ("https", "http")
    if parts.scheme not in allowed_schemes:
        raise TargetRefused(f"Only {' or '.join(allowed_schemes)} URLs are allowed.")
    if not parts.hostname or parts.username or parts.password:
        raise TargetRefused("The URL needs a host and no credentials.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise TargetUnreachable(f"cannot resolve {parts.hostname}: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))  # (an IP address string for TCP)
    if not addresses:
        raise TargetUnreachable(f"cannot resolve {parts.hostname}")
    if not allow_private:
        refused = [address for address in addresses if not address_allowed(address)]
        if refused:
            raise TargetRefused(f"{parts.hostname} resolves to a non-public address ({refused[0]}).")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path, address=addresses[0])


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to the vetted address (no second name resolution)."""

    def __init__(self, target: Target, *, timeout: float = TIMEOUT_SECONDS) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the vetted address; the certificate is checked against the URL's host name."""

    def __init__(self, target: Target, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str = ""


def request(
    method: str,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    require_https: bool,
    allow_private: bool,
    timeout: float = TIMEOUT_SECONDS,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> Answer:
    """One request to a vetted address; a network failure is TargetUnreachable, a refused URL TargetRefused."""
    target = target_resolve(url, require_https=require_https, allow_private=allow_private)
    connection: http.client.HTTPConnection = (
        PinnedHTTPSConnection(target, timeout=timeout)
        if target.scheme == "https"
        else PinnedHTTPConnection(target, timeout=timeout)
    )
    try:
        connection.request(method, target.path, body=body, headers=headers)
        response = connection.getresponse()
        answer = Answer(
            status=response.status,
            body=response.read(max_response_bytes),
            retry_after=response.getheader("Retry-After", "") or "",
        )
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        raise TargetUnreachable(f"{target.host}: {type(error).__name__}: {error}") from None
    finally:
        connection.close()
    return answer
