from django.db import models


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused (deliveries are answered but not processed)"


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Failed (gave up)"


class RecordKind(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    ORDER = "order", "Order"
    PRODUCT = "product", "Product"
    CHECKOUT = "checkout", "Checkout"
    DRAFT_ORDER = "draft_order", "Draft order"


class PushKind(models.TextChoices):
    TAGS_ADD = "tags_add", "Add tags"
    TAGS_REMOVE = "tags_remove", "Remove tags"
    LOYALTY_STATE = "loyalty_state", "Loyalty state (balance, tier)"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe (marketing consent withdrawn here)"
    SUBSCRIBE = "subscribe", "Subscribe (marketing consent given or confirmed here)"


class PushStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    DEAD = "dead", "Failed (gave up)"
    SKIPPED = "skipped", "Skipped (no longer true when due)"
