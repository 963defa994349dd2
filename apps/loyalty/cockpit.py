"""
Signed links to the customer cockpit: /me/<token>/.

The token is Django `signing` (HMAC with the per-install SECRET_KEY, salted) over the membership id and
its `cockpit_nonce`, with a timestamp: a link stops working after LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS
(default 30) and as soon as support rotates the member's nonce (`cockpit_links_revoke`). A member asks
for a fresh link by e-mail on /me/ (`cockpit_links_send`). The public referral code is not part of it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .models import Membership

SALT = "loyalty.cockpit.v2"


def link_max_age() -> timedelta:
    return timedelta(days=settings.LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS)


def cockpit_token(membership: Membership) -> str:
    return signing.dumps({"m": membership.pk, "n": membership.cockpit_nonce}, salt=SALT, compress=True)


def cockpit_path(membership: Membership) -> str:
    return reverse("loyalty-cockpit", kwargs={"token": cockpit_token(membership)})


def cockpit_membership(token: str) -> Membership | None:
    """The membership a token names, or None if it was tampered with, has expired or was revoked."""
    try:
        claims = signing.loads(token, salt=SALT, max_age=link_max_age())
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("m"), int) or not claims.get("n"):
        return None
    return (
        Membership.objects.select_related("program", "tier", "customer", "balance")
        .filter(pk=claims["m"], cockpit_nonce=claims["n"])
        .first()
    )
