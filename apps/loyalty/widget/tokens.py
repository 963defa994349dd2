"""
Widget tokens: Django `signing` (HMAC with SECRET_KEY, its own salt) over the membership id and its
`cockpit_nonce`, timestamped. A token is refused once it is older than LOYALTY_WIDGET_TOKEN_MAX_AGE_SECONDS
(15 minutes by default), altered in any way, or after support revoked the member's links (the nonce changes).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from ..models import Membership

SALT = "loyalty.widget.v1"


def widget_token_max_age() -> timedelta:
    return timedelta(seconds=settings.LOYALTY_WIDGET_TOKEN_MAX_AGE_SECONDS)


def widget_token(membership: Membership) -> tuple[str, datetime]:
    """(token, when it expires) for the member."""
    token = signing.dumps({"w": membership.pk, "n": membership.cockpit_nonce}, salt=SALT, compress=True)
    return token, timezone.now() + widget_token_max_age()


def widget_membership(token: str) -> Membership | None:
    """The membership a token names, or None if it was tampered with, has expired or was revoked."""
    if not token or len(token) > 512:
        return None
    try:
        claims = signing.loads(token, salt=SALT, max_age=widget_token_max_age())
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("w"), int) or not claims.get("n"):
        return None
    return (
        Membership.objects.select_related("program", "tier", "customer", "balance")
        .filter(pk=claims["w"], cockpit_nonce=claims["n"])
        .first()
    )
