"""Connecting a shop: the connection row with its secrets encrypted, audited like every configuration change."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.platform.audit import audit_record
from loyalty_site.lib.crypto import secret_encrypt
from loyalty_site.lib.money import CurrencyError, currency_code

from ..choices import Platform
from ..models import (
    DEFAULT_CONSENT_META_KEY,
    DEFAULT_CONSENT_META_SUBSCRIBED,
    DEFAULT_CONSENT_META_UNSUBSCRIBED,
    TOPICS,
    StoreConnection,
)
from .push import push_cursor_start

AUDITED = (
    "name",
    "platform",
    "shop_domain",
    "shop_currency",
    "topics",
    "status",
    "push_enabled",
    "push_unsubscribes",
    "consent_meta_key",
    "consent_meta_unsubscribed",
    "consent_meta_subscribed",
    "api_base_url",
)
META_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def shop_domain_clean(value: str) -> str:
    """A bare host name, lower-case: what the shop puts in X-Shopify-Shop-Domain / X-WC-Webhook-Source."""
    domain = value.strip().lower().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if (
        not domain
        or len(domain) > 100
        or not all(part and part.replace("-", "").isalnum() for part in domain.split("."))
    ):
        raise ValidationError({"shop_domain": "Give the shop's host name, e.g. acme.myshopify.com."})
    return domain


def _clean(fields: dict[str, Any], platform: str) -> dict[str, Any]:
    clean = dict(fields)
    if "shop_domain" in clean:
        clean["shop_domain"] = shop_domain_clean(clean["shop_domain"])
    if "shop_currency" in clean:
        try:
            clean["shop_currency"] = currency_code(clean["shop_currency"], path="shop_currency")
        except CurrencyError as error:
            raise ValidationError({"shop_currency": error.message}) from None
    if "topics" in clean:
        known = TOPICS[Platform(platform)]
        unknown = [topic for topic in clean["topics"] if topic not in known]
        if unknown:
            raise ValidationError({"topics": f"Unknown topic(s): {', '.join(unknown)}."})
        clean["topics"] = [topic for topic in known if topic in clean["topics"]]
    if "consent_meta_key" in clean:
        clean["consent_meta_key"] = str(clean["consent_meta_key"] or "").strip()
        if not META_KEY.fullmatch(clean["consent_meta_key"]):
            raise ValidationError(
                {"consent_meta_key": "A meta key: 1 to 100 letters, digits, _ . : or -, e.g. newsletter."}
            )
    if "consent_meta_unsubscribed" in clean:
        clean["consent_meta_unsubscribed"] = str(clean["consent_meta_unsubscribed"] or "").strip()
        if not clean["consent_meta_unsubscribed"] or len(clean["consent_meta_unsubscribed"]) > 100:
            raise ValidationError(
                {"consent_meta_unsubscribed": "The value the meta key takes when unsubscribed (1 to 100 characters)."}
            )
    if "consent_meta_subscribed" in clean:
        clean["consent_meta_subscribed"] = str(clean["consent_meta_subscribed"] or "").strip()
        if not clean["consent_meta_subscribed"] or len(clean["consent_meta_subscribed"]) > 100:
            raise ValidationError(
                {"consent_meta_subscribed": "The value the meta key takes when subscribed (1 to 100 characters)."}
            )
        if clean["consent_meta_subscribed"].lower() == str(clean.get("consent_meta_unsubscribed", "")).lower():
            raise ValidationError({"consent_meta_subscribed": "Must differ from the unsubscribed value."})
    return clean


def _unsubscribes_check(connection: StoreConnection) -> None:
    if connection.push_unsubscribes and not connection.api_token:
        raise ValidationError(
            {"push_unsubscribes": "Give the shop's API token too: consent changes are sent through its Admin API."}
        )


def connection_fields_check(*, platform: str, shop_domain: str = "", shop_currency: str = "") -> dict[str, Any]:
    """The checks of `connection_create` that a form can run before saving (cleaned values, or ValidationError)."""
    if platform not in Platform.values:
        raise ValidationError({"platform": "Choose Shopify or WooCommerce."})
    clean = _clean({"shop_domain": shop_domain, "shop_currency": shop_currency}, platform)
    if StoreConnection.objects.filter(platform=platform, shop_domain=clean["shop_domain"]).exists():
        raise ValidationError({"shop_domain": "This shop is already connected."})
    return clean


@transaction.atomic
def connection_create(
    *,
    name: str,
    platform: str,
    shop_domain: str,
    signing_secret: str,
    shop_currency: str,
    topics: list[str] | None = None,
    api_token: str = "",
    api_base_url: str = "",
    push_enabled: bool = False,
    push_unsubscribes: bool = False,
    consent_meta_key: str = DEFAULT_CONSENT_META_KEY,
    consent_meta_unsubscribed: str = DEFAULT_CONSENT_META_UNSUBSCRIBED,
    consent_meta_subscribed: str = DEFAULT_CONSENT_META_SUBSCRIBED,
    user: Any = None,
) -> StoreConnection:
    """Connect a shop. The secrets are stored encrypted and never shown again; every topic is on by default."""
    connection_fields_check(platform=platform, shop_domain=shop_domain, shop_currency=shop_currency)
    if not signing_secret.strip():
        raise ValidationError({"signing_secret": "Paste the signing secret the shop shows for its webhooks."})
    fields = _clean(
        {
            "name": name.strip() or shop_domain,
            "shop_domain": shop_domain,
            "shop_currency": shop_currency,
            "topics": list(TOPICS[Platform(platform)]) if topics is None else topics,
            "api_base_url": api_base_url.strip(),
            "push_enabled": push_enabled,
            "push_unsubscribes": push_unsubscribes,
            "consent_meta_key": consent_meta_key,
            "consent_meta_unsubscribed": consent_meta_unsubscribed,
            "consent_meta_subscribed": consent_meta_subscribed,
        },
        platform,
    )
    connection = StoreConnection(
        platform=platform,
        signing_secret=secret_encrypt(signing_secret.strip()),
        api_token=secret_encrypt(api_token.strip()) if api_token.strip() else "",
        created_by=user if getattr(user, "is_authenticated", False) else None,
        **fields,
    )
    connection.full_clean(validate_unique=False, validate_constraints=False)
    _unsubscribes_check(connection)
    connection.save()
    push_cursor_start(connection=connection, consents=True, changes=True)
    audit_record(
        action="created",
        obj=connection,
        user=user,
        changes={name: {"old": None, "new": _audit_value(getattr(connection, name))} for name in AUDITED},
    )
    return connection


@transaction.atomic
def connection_update(
    *,
    connection: StoreConnection,
    user: Any = None,
    signing_secret: str = "",
    api_token: str = "",
    **fields: Any,
) -> StoreConnection:
    """Change settings; a non-empty `signing_secret` / `api_token` replaces the stored one (audited as "replaced")."""
    connection = StoreConnection.objects.select_for_update().get(pk=connection.pk)
    unknown = set(fields) - set(AUDITED) - {"name"}
    if unknown or "platform" in fields:
        raise ValidationError(dict.fromkeys(sorted(unknown | ({"platform"} & set(fields))), "Cannot be changed."))
    clean = _clean(fields, connection.platform)
    changes: dict[str, dict[str, Any]] = {}
    for name, value in clean.items():
        if getattr(connection, name) != value:
            changes[name] = {"old": _audit_value(getattr(connection, name)), "new": _audit_value(value)}
            setattr(connection, name, value)
    if signing_secret.strip():
        connection.signing_secret = secret_encrypt(signing_secret.strip())
        changes["signing_secret"] = {"old": "(secret)", "new": "(replaced)"}
    if api_token.strip():
        connection.api_token = secret_encrypt(api_token.strip())
        changes["api_token"] = {"old": "(secret)", "new": "(replaced)"}
    connection.full_clean(validate_unique=False, validate_constraints=False)
    _unsubscribes_check(connection)
    connection.save()
    # Switched on: push what changes from now on, not what changed while it was off.
    push_cursor_start(
        connection=connection,
        consents=changes.get("push_unsubscribes", {}).get("new") is True,
        changes=changes.get("push_enabled", {}).get("new") is True,
    )
    if changes:
        audit_record(action="updated", obj=connection, user=user, changes=changes)
    return connection


def _audit_value(value: Any) -> Any:
    return value if isinstance(value, (str, int, bool, list, type(None))) else str(value)
