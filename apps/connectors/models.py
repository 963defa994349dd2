"""Store connectors: a connected shop, the webhook deliveries it sent us, what we know of its records, pushes back."""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.customers.models import Customer

from .choices import ConnectionStatus, DeliveryStatus, Platform, PushKind, PushStatus, RecordKind

SHOPIFY_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/edited",
    "orders/cancelled",
    "orders/paid",
    "refunds/create",
    "customers/create",
    "customers/update",
    "customers/enable",
    "checkouts/create",
    "checkouts/update",
    "draft_orders/create",
    "products/create",
    "products/update",
)
WOOCOMMERCE_TOPICS = ("order.created", "order.updated", "customer.created", "customer.updated")
TOPICS: dict[str, tuple[str, ...]] = {Platform.SHOPIFY: SHOPIFY_TOPICS, Platform.WOOCOMMERCE: WOOCOMMERCE_TOPICS}


DEFAULT_CONSENT_META_KEY = "mailchimp_woocommerce_is_subscribed"
DEFAULT_CONSENT_META_UNSUBSCRIBED = "unsubscribed"
DEFAULT_CONSENT_META_SUBSCRIBED = "1"


def hook_key_generate() -> str:
    return secrets.token_urlsafe(18)


class StoreConnection(models.Model):
    """
    One connected shop: where its webhooks arrive (`/hooks/<platform>/<hook_key>/`), the secret that signs
    them (encrypted at rest, never shown again), which topics we act on, and where we push tags and loyalty
    state back (the shop's Admin API, with its own encrypted access token).
    """

    name = models.CharField(max_length=100, help_text="A name for people, e.g. “EU web shop”")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    shop_domain = models.CharField(
        max_length=100, help_text="acme.myshopify.com, or your WooCommerce site's host name (shop.example.com)"
    )
    hook_key = models.CharField(max_length=32, unique=True, default=hook_key_generate, editable=False)
    # `encrypted:v1:<Fernet token>` (loyalty_site.lib.crypto); the plaintext is never shown or logged.
    signing_secret = models.TextField(editable=False)
    shop_currency = models.CharField(max_length=3, help_text="The shop's currency (ISO 4217), e.g. USD")
    topics = models.JSONField(default=list, blank=True, help_text="Topics acted on; others are stored and ignored")
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.ACTIVE)
    # Pushing back (optional): Shopify Admin API access token / WooCommerce "key:secret", encrypted.
    push_enabled = models.BooleanField(default=False, help_text="Push workflow tags and loyalty state to the shop")
    api_token = models.TextField("API token", blank=True, editable=False)
    # Named for what it first pushed; it pushes every marketing-consent change made here (granted, confirmed,
    # withdrawn) since consents given here are pushed too.
    push_unsubscribes = models.BooleanField(
        "push marketing consent",
        default=False,
        help_text="When a customer of this shop subscribes (double opt-in confirmed, API, form, console) or "
        "unsubscribes here, do the same in the shop (needs the API token)",
    )
    # WooCommerce keeps no marketing consent of its own: the opt-in plugin's customer meta key we set.
    consent_meta_key = models.CharField(
        "consent meta key",
        max_length=100,
        default=DEFAULT_CONSENT_META_KEY,
        help_text="WooCommerce: the customer meta key of your opt-in plugin (Mailchimp for WooCommerce: "
        "mailchimp_woocommerce_is_subscribed)",
    )
    consent_meta_unsubscribed = models.CharField(
        "unsubscribed meta value",
        max_length=100,
        default=DEFAULT_CONSENT_META_UNSUBSCRIBED,
        help_text="WooCommerce: the value that meta key takes for an unsubscribed customer",
    )
    consent_meta_subscribed = models.CharField(
        "subscribed meta value",
        max_length=100,
        default=DEFAULT_CONSENT_META_SUBSCRIBED,
        help_text="WooCommerce: the value that meta key takes for a subscribed customer",
    )
    api_base_url = models.CharField(
        "API base URL",
        max_length=255,
        blank=True,
        help_text="Leave empty to use https:// and the shop domain. Set only for a proxy or a test server.",
    )
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    deliveries_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "shop_domain"], name="store_connection_shop_uniq"),
        ]
        permissions = [("reprocess_delivery", "Can re-process a webhook delivery")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()}: {self.shop_domain})"

    @property
    def cause(self) -> str:
        """The cause every write made for this shop carries (the loop guard and audit read it)."""
        return f"connector:{self.platform}:{self.shop_domain}"[:64]


class WebhookDelivery(models.Model):
    """One webhook as the shop sent it: stored first (answered 200 at once), processed by a task."""

    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="deliveries")
    topic = models.CharField(max_length=64)
    webhook_id = models.CharField(max_length=100, help_text="X-Shopify-Webhook-Id / X-WC-Webhook-Delivery-ID")
    body = models.TextField(help_text="The raw body (bounded by CONNECTORS_MAX_BODY_BYTES)")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)
    outcome = models.JSONField(default=dict, blank=True, help_text="What it did: ids written, or why ignored")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["connection", "webhook_id"], name="webhook_delivery_once"),
        ]
        indexes = [
            models.Index(fields=["connection", "-received_at"], name="delivery_connection_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id}"


class RemoteRecord(models.Model):
    """
    What we know of one record of the shop: its id there, ours here, the `updated_at` of the newest version
    applied (an older delivery is ignored) and, for customers, the tags the shop last had (tag changes are
    applied as differences from it, so an echo of our own push changes nothing).
    """

    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="records")
    kind = models.CharField(max_length=16, choices=RecordKind.choices)
    remote_id = models.CharField(max_length=64)
    local_id = models.BigIntegerField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    remote_tags = models.JSONField(default=list, blank=True)
    pushed_state = models.JSONField(default=dict, blank=True, help_text="Loyalty state last pushed")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection", "kind", "remote_id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "kind", "remote_id"], name="remote_record_uniq"),
        ]
        indexes = [models.Index(fields=["kind", "local_id"], name="remote_record_local_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.remote_id} → {self.local_id}"


class Push(models.Model):
    """A change to send to the shop (our outbound outbox): retried with back-off on 429/5xx, then dead."""

    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="pushes")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=PushKind.choices)
    tags = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=16, blank=True, help_text="Unsubscribes: the consent channel (email, sms)")
    # Unique per source (a tag audit row, "loyalty:…" for a state push, "unsubscribe:<outbox event>:<channel>"),
    # so collecting twice queues nothing twice.
    source_key = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=PushStatus.choices, default=PushStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "source_key"], name="push_source_once"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="push_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} for customer {self.customer_id}"


class PushCursor(models.Model):
    """How far the collector has read the tag audit, the balances and the consent history (one row per connection)."""

    connection = models.OneToOneField(StoreConnection, on_delete=models.CASCADE, primary_key=True, related_name="+")
    tags_since = models.DateTimeField(default=timezone.now)
    loyalty_since = models.DateTimeField(default=timezone.now)
    consents_since = models.DateTimeField(default=timezone.now)
    # Consent history rows up to this id are older than the overlap window: the next read starts after it
    # (a range scan of the primary key instead of a scan of the whole history by time).
    consents_after_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"cursor of {self.connection_id}"
