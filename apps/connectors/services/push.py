"""
Pushing back to the shop: tags that workflows add or remove, and the loyalty state (balance, tier), onto the
shop's customer — Shopify Admin GraphQL `tagsAdd` / `tagsRemove` / `metafieldsSet`, WooCommerce customer meta.

`pushes_collect` (periodic) reads what changed since its cursor — the tag audit rows of workflows (single runs
and bulk runs alike) and the balances and tiers of the shop's customers — and queues `Push` rows (our outbound
outbox; unique per source, so reading an overlapping window twice queues nothing twice). `pushes_send_due`
sends the due ones in order per customer, outside any transaction (a lease holds the row meanwhile), and
retries 429 / 5xx / network failures / Shopify's THROTTLED with back-off (Retry-After respected), up to
MAX_ATTEMPTS; other refusals end the push `dead` with the shop's answer.

Unsubscribes (`push_unsubscribes`): a withdrawal of marketing consent recorded here — unsubscribe link, API,
console — reaches this app as the outbox event `customer.unsubscribed`; the connectors' outbox consumer
(`apps/connectors/consumer.py`) queues one `Push` per shop that knows the customer (`unsubscribe_pushes_queue`,
unique per event and channel) and a task sends each at once (`push_send_one`); failures follow the same
back-off. A withdrawal that came from a shop is not pushed back to it, and the shop's echo
(customers/update, now unsubscribed) changes nothing here: the consent is already withdrawn.

Consents given here (the same setting): a grant of marketing consent recorded here — double opt-in confirmed,
API, landing form, console — is read by `pushes_collect` from the consent history (`ConsentEvent` rows with
new status granted, by id range) and queued as a `subscribe` push (once per history row and shop); Shopify gets
`marketingState: SUBSCRIBED` with `marketingOptInLevel` CONFIRMED_OPT_IN (double opt-in confirmed) or
SINGLE_OPT_IN, WooCommerce the connection's subscribed meta value. When it is due it is sent only if the consent
is still granted here (else skipped); a grant that came from the shop (its cause) is not pushed back to it,
and the shop's echo (customers/update, subscribed) finds the consent granted already and changes nothing.

Never looping: only tags written by workflows are pushed (not the tags the shop itself sent us), and when the
shop echoes our change back as customers/update, the inbound side applies only differences from the shop's
last known tags (`RemoteRecord.remote_tags`, updated here on success) — the echo changes nothing and
triggers nothing.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from apps.customers.consent.choices import Channel, ConsentStatus, Purpose
from apps.customers.consent.models import Consent, ConsentEvent
from apps.customers.models import DomainEvent
from apps.loyalty.models import Membership
from apps.loyalty.services.ledger import program_default
from apps.tagging.choices import TagAuditAction, TagSource
from apps.tagging.models import CustomerTag, TagAudit
from loyalty_site.lib import outbound
from loyalty_site.lib.crypto import SecretUnreadable, secret_decrypt

from ..choices import Platform, PushKind, PushStatus, RecordKind
from ..models import Push, PushCursor, RemoteRecord, StoreConnection

logger = logging.getLogger(__name__)

SHOPIFY_API_VERSION = "2025-01"
METAFIELD_NAMESPACE = "loyalty"
MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
LEASE = timedelta(minutes=5)
# Rows committed a little after later ones (long transactions) are still seen: the window overlaps.
OVERLAP = timedelta(minutes=2)
BATCH = 200


# --- Collecting ----------------------------------------------------------------------------------------


def loyalty_state(*, customer_id: int) -> dict[str, Any]:
    """What we push: the spendable balance and the tier's name ("" when none)."""
    program = program_default()
    if program is None:
        return {}
    membership = (
        Membership.objects.select_related("tier", "balance").filter(program=program, customer_id=customer_id).first()
    )
    if membership is None:
        return {}
    balance = getattr(membership, "balance", None)
    return {"balance": balance.available if balance else 0, "tier": membership.tier.name if membership.tier else ""}


def push_cursor_start(
    *, connection: StoreConnection, consents: bool, changes: bool, now: datetime | None = None
) -> None:
    """
    Start the connection's collector cursor now for consents and/or for tags and loyalty state (a connection
    created, or a kind of push switched on): what changed before is not pushed.
    """
    if not (consents or changes):
        return
    now = now or timezone.now()
    fields: dict[str, Any] = {}
    if consents:
        fields["consents_since"] = now
        fields["consents_after_id"] = ConsentEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    if changes:
        fields["tags_since"] = fields["loyalty_since"] = now
    PushCursor.objects.update_or_create(connection=connection, defaults=fields)


def _consent_pushes(connection: StoreConnection, cursor: PushCursor, linked: Any, now: datetime) -> list[Push]:
    """
    The grants of marketing consent recorded here since the cursor for this shop's customers — not those the
    shop itself reported (its cause) — as `subscribe` pushes, one per consent history row (its id in the key).
    SMS only for Shopify (WooCommerce keeps no SMS consent). The cursor's id floor moves past the rows older
    than the overlap window, so each call reads a short primary-key range.
    """
    channels = [Channel.EMAIL, Channel.SMS] if connection.platform == Platform.SHOPIFY else [Channel.EMAIL]
    window = ConsentEvent.objects.filter(pk__gt=cursor.consents_after_id)
    grants = (
        window.filter(
            created_at__gte=cursor.consents_since - OVERLAP,
            created_at__lte=now,
            purpose=Purpose.MARKETING,
            new_status=ConsentStatus.GRANTED,
            channel__in=channels,
            customer_id__in=linked.values("local_id"),
        )
        .exclude(cause=connection.cause)
        .order_by("pk")
        .values_list("pk", "customer_id", "channel")
    )
    pushes = [
        Push(
            connection=connection,
            customer_id=customer_id,
            kind=PushKind.SUBSCRIBE,
            channel=channel,
            source_key=f"consent_event:{event_id}",
            next_attempt_at=now,
        )
        for event_id, customer_id, channel in grants
    ]
    settled = window.filter(created_at__lt=now - OVERLAP).aggregate(last=Max("pk"))["last"]
    if settled is not None:
        cursor.consents_after_id = settled
    cursor.consents_since = now
    return pushes


@transaction.atomic
def pushes_collect(*, connection: StoreConnection, now: datetime | None = None) -> int:
    """
    Queue the pushes of what changed for this shop's customers since the last call: workflow tags and the
    loyalty state when the connection pushes them (`push_enabled`), consents given here when it pushes
    marketing consent (`push_unsubscribes`). Returns how many.
    """
    now = now or timezone.now()
    PushCursor.objects.get_or_create(
        connection=connection,
        defaults={
            "tags_since": now,
            "loyalty_since": now,
            "consents_since": now,
            # A new cursor starts at the end of the history: consents given before are not pushed.
            "consents_after_id": ConsentEvent.objects.aggregate(last=Max("pk"))["last"] or 0,
        },
    )
    cursor = PushCursor.objects.select_for_update().get(connection=connection)
    linked = RemoteRecord.objects.filter(connection=connection, kind=RecordKind.CUSTOMER, local_id__isnull=False)
    # A kind of change the connection does not push moves its cursor on: switching it on later pushes
    # nothing of what happened while it was off.
    if connection.push_unsubscribes:
        pushes = _consent_pushes(connection, cursor, linked, now)
    else:
        pushes = []
        cursor.consents_since = now
        cursor.consents_after_id = ConsentEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    if connection.push_enabled:
        pushes += _changes_pushes(connection, cursor, linked, now)
    else:
        cursor.tags_since = cursor.loyalty_since = now
    created = Push.objects.bulk_create(pushes, ignore_conflicts=True)
    cursor.save(update_fields=["tags_since", "loyalty_since", "consents_since", "consents_after_id"])
    return len(created)


def _changes_pushes(connection: StoreConnection, cursor: PushCursor, linked: Any, now: datetime) -> list[Push]:
    """Workflow tag changes (from the tag audit) and changed loyalty states since the cursor, as pushes."""
    audits = (
        TagAudit.objects.filter(
            source=TagSource.WORKFLOW,
            created_at__gte=cursor.tags_since - OVERLAP,
            created_at__lte=now,
            customer_id__in=linked.values("local_id"),
        )
        .order_by("pk")
        .values_list("pk", "customer_id", "action", "tag_name")
    )
    pushes = [
        Push(
            connection=connection,
            customer_id=customer_id,
            kind=PushKind.TAGS_ADD if action == TagAuditAction.ADDED else PushKind.TAGS_REMOVE,
            tags=[tag_name],
            source_key=f"tag_audit:{audit_id}",
            next_attempt_at=now,
        )
        for audit_id, customer_id, action, tag_name in audits.iterator()
    ]
    changed_members = Membership.objects.filter(
        Q(balance__updated_at__gte=cursor.loyalty_since - OVERLAP) | Q(tier_since__gte=cursor.loyalty_since - OVERLAP),
        customer_id__in=linked.values("local_id"),
    ).values_list("customer_id", flat=True)
    waiting = set(
        Push.objects.filter(connection=connection, kind=PushKind.LOYALTY_STATE, status=PushStatus.PENDING).values_list(
            "customer_id", flat=True
        )
    )
    records = {record.local_id: record for record in linked.filter(local_id__in=changed_members)}
    for customer_id, record in records.items():
        if customer_id is None or customer_id in waiting:
            continue  # the waiting push reads the state when it is sent
        state = loyalty_state(customer_id=customer_id)
        if state and state != record.pushed_state:
            pushes.append(
                Push(
                    connection=connection,
                    customer_id=customer_id,
                    kind=PushKind.LOYALTY_STATE,
                    source_key=f"loyalty:{customer_id}:{now.timestamp():.6f}",
                    next_attempt_at=now,
                )
            )
    cursor.tags_since = cursor.loyalty_since = now
    return pushes


# --- Sending -------------------------------------------------------------------------------------------

CONSENT_KINDS = (PushKind.UNSUBSCRIBE, PushKind.SUBSCRIBE)


class PushRetry(Exception):
    """A transient failure (429, 5xx, network, THROTTLED): tried again after `after` at the earliest."""

    def __init__(self, message: str, *, after: timedelta | None = None) -> None:
        super().__init__(message)
        self.after = after


class PushRefused(Exception):
    """The shop refused the change for good (bad token, unknown customer, userErrors): the push is dead."""


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]


def base_url(connection: StoreConnection) -> str:
    return (connection.api_base_url or f"https://{connection.shop_domain}").rstrip("/")


def _token(connection: StoreConnection) -> str:
    try:
        return secret_decrypt(connection.api_token)
    except SecretUnreadable:
        raise PushRefused("the connection has no readable API token") from None


SHOPIFY_MUTATIONS: dict[str, str] = {
    PushKind.TAGS_ADD: (
        "mutation tagsAdd($id: ID!, $tags: [String!]!) "
        "{ tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }"
    ),
    PushKind.TAGS_REMOVE: (
        "mutation tagsRemove($id: ID!, $tags: [String!]!) "
        "{ tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } } }"
    ),
    # Consent (subscribe and unsubscribe), by channel (the push's `channel`): only SUBSCRIBED / UNSUBSCRIBED /
    # PENDING can be set.
    "consent:email": (
        "mutation customerEmailMarketingConsentUpdate($input: CustomerEmailMarketingConsentUpdateInput!) "
        "{ customerEmailMarketingConsentUpdate(input: $input) "
        "{ customer { id emailMarketingConsent { marketingState consentUpdatedAt } } userErrors { field message } } }"
    ),
    "consent:sms": (
        "mutation customerSmsMarketingConsentUpdate($input: CustomerSmsMarketingConsentUpdateInput!) "
        "{ customerSmsMarketingConsentUpdate(input: $input) "
        "{ customer { id smsMarketingConsent { marketingState consentUpdatedAt } } userErrors { field message } } }"
    ),
    PushKind.LOYALTY_STATE: (
        "mutation metafieldsSet($metafields: [MetafieldsSetInput!]!) "
        "{ metafieldsSet(metafields: $metafields) { metafields { key value } userErrors { field message code } } }"
    ),
}


def _shopify_call(connection: StoreConnection, push: Push, remote_id: str, state: dict[str, Any]) -> Call:
    owner = f"gid://shopify/Customer/{remote_id}"
    query = SHOPIFY_MUTATIONS.get(push.kind, "")
    if push.kind in CONSENT_KINDS:
        query = SHOPIFY_MUTATIONS[f"consent:{push.channel}"]
        consent_key = "emailMarketingConsent" if push.channel == Channel.EMAIL else "smsMarketingConsent"
        if push.kind == PushKind.UNSUBSCRIBE:
            # The moment it was withdrawn here: the shop's echo then carries it as consent_updated_at.
            marketing = {"marketingState": "UNSUBSCRIBED", "consentUpdatedAt": state["withdrawn_at"]}
        else:  # confirmed by the double opt-in link, or given at once (API, form without double opt-in, console)
            marketing = {
                "marketingState": "SUBSCRIBED",
                "marketingOptInLevel": "CONFIRMED_OPT_IN" if state["confirmed"] else "SINGLE_OPT_IN",
                "consentUpdatedAt": state["granted_at"],
            }
        variables: dict[str, Any] = {"input": {"customerId": owner, consent_key: marketing}}
    elif push.kind == PushKind.LOYALTY_STATE:
        variables = {
            "metafields": [
                {
                    "ownerId": owner,
                    "namespace": METAFIELD_NAMESPACE,
                    "key": "points_balance",
                    "type": "number_integer",
                    "value": str(state.get("balance", 0)),
                },
                {
                    "ownerId": owner,
                    "namespace": METAFIELD_NAMESPACE,
                    "key": "tier",
                    "type": "single_line_text_field",
                    "value": state.get("tier") or "None",
                },
            ]
        }
    else:
        variables = {"id": owner, "tags": push.tags}
    return Call(
        method="POST",
        url=f"{base_url(connection)}/admin/api/{SHOPIFY_API_VERSION}/graphql.json",
        body={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": _token(connection)},
    )


def _woocommerce_call(connection: StoreConnection, push: Push, remote_id: str, state: dict[str, Any]) -> Call:
    if push.kind == PushKind.UNSUBSCRIBE:  # the opt-in plugin's meta key (the connection's setting)
        meta = [{"key": connection.consent_meta_key, "value": connection.consent_meta_unsubscribed}]
    elif push.kind == PushKind.SUBSCRIBE:
        meta = [{"key": connection.consent_meta_key, "value": connection.consent_meta_subscribed}]
    elif push.kind == PushKind.LOYALTY_STATE:
        meta = [
            {"key": "loyalty_points_balance", "value": str(state.get("balance", 0))},
            {"key": "loyalty_tier", "value": state.get("tier", "")},
        ]
    else:  # WooCommerce customers have no tags: the workflow tags they carry now, as one meta value
        names = CustomerTag.objects.filter(customer_id=push.customer_id).order_by("tag__name")
        meta = [{"key": "loyalty_tags", "value": ", ".join(names.values_list("tag__name", flat=True))}]
    credentials = base64.b64encode(_token(connection).encode()).decode()
    return Call(
        method="PUT",
        url=f"{base_url(connection)}/wp-json/wc/v3/customers/{remote_id}",
        body={"meta_data": meta},
        headers={"Authorization": f"Basic {credentials}"},
    )


def _retry_after(value: str) -> timedelta | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return timedelta(seconds=min(max(seconds, 0), RETRY_CAP.total_seconds()))


def _perform(call: Call, *, platform: str) -> dict[str, Any]:
    body = json.dumps(call.body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "loyalty-site/1"}
    try:
        answer = outbound.request(
            call.method,
            call.url,
            body=body,
            headers={**headers, **call.headers},
            require_https=getattr(settings, "CONNECTORS_PUSH_REQUIRE_HTTPS", True),
            allow_private=getattr(settings, "CONNECTORS_PUSH_ALLOW_PRIVATE", False),
        )
    except outbound.TargetRefused as error:
        raise PushRefused(str(error)) from None
    except outbound.TargetUnreachable as error:
        raise PushRetry(str(error)) from None
    excerpt = answer.body[:300].decode("utf-8", "replace")
    if answer.status == 429 or answer.status >= 500:
        raise PushRetry(f"the shop answered {answer.status}", after=_retry_after(answer.retry_after))
    if answer.status >= 300:
        raise PushRefused(f"the shop answered {answer.status}: {excerpt}")
    try:
        parsed = json.loads(answer.body or b"{}")
    except ValueError:
        raise PushRefused(f"the shop answered {answer.status} with a body that is not JSON: {excerpt}") from None
    if platform == Platform.SHOPIFY:
        _shopify_errors(parsed)
    return parsed if isinstance(parsed, dict) else {}


def _shopify_errors(parsed: Any) -> None:
    """GraphQL answers 200 with `errors` (THROTTLED is transient) or the mutation's `userErrors`."""
    if not isinstance(parsed, dict):
        raise PushRefused("the shop's answer is not a JSON object")
    errors = parsed.get("errors") or []
    if errors:
        codes = {str((error.get("extensions") or {}).get("code")) for error in errors if isinstance(error, dict)}
        if "THROTTLED" in codes:
            raise PushRetry("Shopify throttled the request (THROTTLED)")
        raise PushRefused(f"GraphQL errors: {json.dumps(errors)[:300]}")
    for result in (parsed.get("data") or {}).values():
        user_errors = (result or {}).get("userErrors") if isinstance(result, dict) else None
        if user_errors:
            raise PushRefused(f"userErrors: {json.dumps(user_errors)[:300]}")


# A push goes out only while its connection still pushes that kind of change.
PUSHING = (Q(connection__push_enabled=True) & ~Q(kind__in=CONSENT_KINDS)) | Q(
    kind__in=CONSENT_KINDS, connection__push_unsubscribes=True
)


def _claim(*, now: datetime, limit: int, ids: list[int] | None = None) -> list[Push]:
    """Take the due pushes, oldest first, under a lease (a crashed sender's pushes are due again after it)."""
    with transaction.atomic():
        due_rows = Push.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            PUSHING, status=PushStatus.PENDING, next_attempt_at__lte=now
        )
        if ids is not None:
            due_rows = due_rows.filter(pk__in=ids)
        due = list(due_rows.select_related("connection").order_by("pk")[:limit])
        Push.objects.filter(pk__in=[push.pk for push in due]).update(next_attempt_at=now + LEASE)
    return due


def _waiting_before(push: Push, now: datetime) -> datetime | None:
    """When an earlier push for the same customer is still waiting for its retry: its time (keep the order)."""
    earlier = (
        Push.objects.filter(
            connection_id=push.connection_id,
            customer_id=push.customer_id,
            status=PushStatus.PENDING,
            pk__lt=push.pk,
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return earlier


def push_send(*, push: Push, now: datetime | None = None) -> str:
    """Send one push and record the outcome; returns the push's status."""
    now = now or timezone.now()
    connection = push.connection
    record = RemoteRecord.objects.filter(
        connection=connection, kind=RecordKind.CUSTOMER, local_id=push.customer_id
    ).first()
    state = loyalty_state(customer_id=push.customer_id) if push.kind == PushKind.LOYALTY_STATE else {}
    if push.kind == PushKind.UNSUBSCRIBE:
        withdrawn_at = _withdrawn_at(push)
        if withdrawn_at is None:  # consent given again here before the push was due: the shop keeps its own
            push.status, push.last_error = PushStatus.SKIPPED, "the customer's consent is no longer withdrawn here"
            push.save(update_fields=["status", "last_error"])
            return push.status
        state = {"withdrawn_at": withdrawn_at.isoformat()}
    elif push.kind == PushKind.SUBSCRIBE:
        granted = _granted(push)
        if granted is None:  # withdrawn (or pending again) here before the push was due
            push.status, push.last_error = PushStatus.SKIPPED, "the customer's consent is no longer granted here"
            push.save(update_fields=["status", "last_error"])
            return push.status
        state = granted
    try:
        if record is None:
            raise PushRefused("the customer is not linked to a customer of this shop")
        build = _shopify_call if connection.platform == Platform.SHOPIFY else _woocommerce_call
        _perform(build(connection, push, record.remote_id, state), platform=connection.platform)
    except PushRetry as error:
        push.attempts += 1
        push.last_error = str(error)[:2000]
        if push.attempts >= MAX_ATTEMPTS:
            push.status = PushStatus.DEAD
        else:
            backoff = min(RETRY_BASE * 2 ** (push.attempts - 1), RETRY_CAP)
            push.next_attempt_at = now + max(backoff, error.after or timedelta(0))
        push.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
        return push.status
    except PushRefused as error:
        push.attempts += 1
        push.status, push.last_error = PushStatus.DEAD, str(error)[:2000]
        push.save(update_fields=["attempts", "last_error", "status"])
        logger.warning("connectors: push %s to %s refused: %s", push.pk, connection.shop_domain, error)
        return push.status
    with transaction.atomic():
        push.attempts += 1
        push.status, push.sent_at, push.last_error = PushStatus.SENT, now, ""
        push.save(update_fields=["attempts", "status", "sent_at", "last_error"])
        record = RemoteRecord.objects.select_for_update().get(pk=record.pk)
        if push.kind == PushKind.LOYALTY_STATE:
            record.pushed_state = state
        elif push.kind in CONSENT_KINDS:
            pass  # the shop's echo is recognised by the consent itself (already withdrawn / granted here)
        else:
            # The shop has these tags now (or not): its echo as customers/update is then no change.
            lowered = {name.lower() for name in push.tags}
            kept = [name for name in record.remote_tags or [] if name.lower() not in lowered]
            record.remote_tags = kept + push.tags if push.kind == PushKind.TAGS_ADD else kept
        record.save(update_fields=["pushed_state", "remote_tags", "updated_at"])
    return push.status


def _send_claimed(push: Push, now: datetime) -> str:
    blocker = _waiting_before(push, now)
    if blocker is not None:  # tagsAdd then tagsRemove of one tag must reach the shop in that order
        Push.objects.filter(pk=push.pk).update(next_attempt_at=max(blocker, now) + timedelta(seconds=1))
        return "waiting"
    return push_send(push=push, now=now)


def pushes_send_due(*, now: datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """Send the due pushes of every connection that pushes, in order per customer. Returns counts by outcome."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for push in _claim(now=now, limit=limit):
        status = _send_claimed(push, now)
        counts[status] = counts.get(status, 0) + 1
    return counts


def push_send_one(*, push_id: int, now: datetime | None = None) -> str | None:
    """
    Send one push now if it is still pending and due (the task queued with it). None when there is nothing to
    do: already sent, given up, not due yet, or being sent by another worker (the lease) — safe to run twice.
    """
    now = now or timezone.now()
    claimed = _claim(now=now, limit=1, ids=[push_id])
    return _send_claimed(claimed[0], now) if claimed else None


# --- Unsubscribes --------------------------------------------------------------------------------------

UNSUBSCRIBED = "customer.unsubscribed"
CONFIRMED = "customer.consent_confirmed"


def confirmed_targets(event: DomainEvent) -> list[RemoteRecord]:
    """The connections to push a confirmed double opt-in to at once: they push consent and know the customer."""
    payload = event.payload or {}
    if event.name != CONFIRMED or event.customer_id is None or payload.get("purpose") != Purpose.MARKETING:
        return []
    records = (
        RemoteRecord.objects.filter(
            kind=RecordKind.CUSTOMER, local_id=event.customer_id, connection__push_unsubscribes=True
        )
        .exclude(connection__api_token="")
        .select_related("connection")
        .order_by("pk")
    )
    return list(records)


def confirmed_pushes_queue(*, event: DomainEvent, now: datetime | None = None) -> list[Push]:
    """
    Collect now for the connections of `confirmed_targets` (the periodic collector's code, so the grant's push is
    queued once whichever runs first) and return the customer's pending subscribe pushes to send.
    """
    targets = confirmed_targets(event)
    if not targets or event.customer_id is None:
        return []
    for record in targets:
        pushes_collect(connection=record.connection, now=now)
    return list(
        Push.objects.filter(
            connection_id__in=[record.connection_id for record in targets],
            customer_id=event.customer_id,
            kind=PushKind.SUBSCRIBE,
            status=PushStatus.PENDING,
        ).order_by("pk")
    )


def _granted(push: Push) -> dict[str, Any] | None:
    """
    The push channel's marketing consent as the shop should record it — when it was granted here and whether
    the double opt-in link confirmed that grant — or None when it is not granted (any more).
    """
    row = (
        Consent.objects.filter(
            customer_id=push.customer_id, channel=push.channel, purpose=Purpose.MARKETING, status=ConsentStatus.GRANTED
        )
        .values("granted_at", "confirmed_at")
        .first()
    )
    if row is None or row["granted_at"] is None:
        return None
    # confirmed_at is set just after the grant it confirms; an older confirmation belongs to an earlier grant.
    confirmed = row["confirmed_at"] is not None and row["confirmed_at"] >= row["granted_at"]
    return {"granted_at": row["granted_at"].isoformat(), "confirmed": confirmed}


def _withdrawn_at(push: Push) -> datetime | None:
    """When the push's channel was withdrawn here, None when it is not withdrawn (any more)."""
    return (
        Consent.objects.filter(
            customer_id=push.customer_id,
            channel=push.channel,
            purpose=Purpose.MARKETING,
            status=ConsentStatus.WITHDRAWN,
        )
        .values_list("withdrawn_at", flat=True)
        .first()
    )


def unsubscribe_targets(event: DomainEvent) -> list[RemoteRecord]:
    """
    The shop customers to unsubscribe for a `customer.unsubscribed` outbox event: the event's customer as known
    by each connection that pushes unsubscribes (and has an API token) — except the shop the withdrawal came
    from (its cause), which already has it. E-mail goes to both platforms, SMS to Shopify only (WooCommerce
    keeps no SMS consent). One indexed query (`remote_record_local_idx`).
    """
    payload = event.payload or {}
    channel = payload.get("channel", Channel.EMAIL)
    if (
        event.name != UNSUBSCRIBED
        or event.customer_id is None
        or payload.get("purpose", Purpose.MARKETING) != Purpose.MARKETING
    ):
        return []
    if channel not in (Channel.EMAIL, Channel.SMS):
        return []
    records = (
        RemoteRecord.objects.filter(
            kind=RecordKind.CUSTOMER, local_id=event.customer_id, connection__push_unsubscribes=True
        )
        .exclude(connection__api_token="")
        .select_related("connection")
        .order_by("pk")
    )
    return [
        record
        for record in records
        if record.connection.cause != event.cause
        and (channel == Channel.EMAIL or record.connection.platform == Platform.SHOPIFY)
    ]


@transaction.atomic
def unsubscribe_pushes_queue(*, event: DomainEvent, now: datetime | None = None) -> list[Push]:
    """Queue the unsubscribe pushes of one outbox event (once: unique per connection, event and channel)."""
    now = now or timezone.now()
    targets = unsubscribe_targets(event)
    if not targets or event.customer_id is None:
        return []
    channel = (event.payload or {}).get("channel", Channel.EMAIL)
    source_key = f"unsubscribe:{event.pk}:{channel}"
    Push.objects.bulk_create(
        [
            Push(
                connection=record.connection,
                customer_id=event.customer_id,
                kind=PushKind.UNSUBSCRIBE,
                channel=channel,
                source_key=source_key,
                next_attempt_at=now,
            )
            for record in targets
        ],
        ignore_conflicts=True,
    )
    return list(
        Push.objects.filter(
            source_key=source_key, connection_id__in=[record.connection_id for record in targets]
        ).order_by("pk")
    )


def pushes_run(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic: collect for every connection that pushes, then send what is due."""
    now = now or timezone.now()
    pushing = StoreConnection.objects.filter(Q(push_enabled=True) | Q(push_unsubscribes=True))
    for connection in pushing.exclude(api_token="").order_by("pk"):
        pushes_collect(connection=connection, now=now)
    return pushes_send_due(now=now)
