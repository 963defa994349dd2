"""Bearer-token authentication for integrators; tokens are stored as SHA-256 digests only."""

import hashlib
import secrets

from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken

TOKEN_PREFIX = "lsk_"
# A hot token would otherwise write its row on every request.
LAST_USED_RESOLUTION_SECONDS = 60


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_generate() -> str:
    """A new random token; shown once, never stored in clear."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` (also accepts the `Token` keyword). Failures are throttled per IP."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="ignore") not in self.keywords:
            return None
        from .throttling import AuthFailureThrottle

        failures = AuthFailureThrottle()
        failures.check(request)
        if len(header) != 2:
            failures.record(request)
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        raw = header[1].decode(errors="ignore")
        token = (
            ApiToken.objects.select_related("user")
            .filter(digest=token_digest(raw), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        now = timezone.now()
        if token is None:
            failures.record(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not token.is_usable(now=now):
            failures.record(request)
            raise exceptions.AuthenticationFailed("This token has expired.")
        ip = client_ip(request)
        stale = token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        if stale:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
