"""
Sending messages. Every message is a Delivery row first (`delivery_queue`): consent, the address and send
governance decide there whether it is suppressed (with the reason), delayed (queued with `send_after`) or
due. `delivery_send` / `deliveries_send` claim due rows (a conditional UPDATE: a row is sent by one sender
only, never twice) and hand them to the channel, reusing one e-mail connection for a batch. A transient
provider failure puts the row back in the queue with exponential backoff, up to MESSAGING_MAX_ATTEMPTS; a
permanent one fails it with the reason. `deliveries_due_send` (periodic) sends what became due.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.customers.models import Customer
from loyalty_site.lib import tasks as task_queue
from loyalty_site.lib.rows_update import rows_update

from . import consent, governance
from .choices import Channel, DeliveryReason, DeliveryStatus, Purpose
from .email import email_connection, email_send, email_sender
from .errors import ProviderError
from .models import Delivery
from .sms import phone_is_valid, sms_backend

logger = logging.getLogger(__name__)

# A claim older than this is abandoned (its sender died): the row may be claimed again. Far longer than a
# sending task may live (the django-q2 `timeout`, 120 s by default; see `claim_ttl`), so a live sender's rows
# are never claimed by a second one.
CLAIM_TTL = timedelta(minutes=10)
# Rows claimed and sent together on one e-mail connection (a bulk run's sending task holds this many).
BATCH_SIZE = 500
# Outcomes are saved (one UPDATE, committed) after every this many sends: a sender killed mid-batch loses the
# record of at most this many sends, not of the whole batch.
SAVE_EVERY = 20
# A due row still queued this long after it was written lost its sending task: the sweep sends it.
ORPHANED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Content:
    """What a message says, rendered (a template's version, or inline text)."""

    subject: str = ""
    text: str = ""
    html: str = ""
    template_key: str = ""
    template_version: int | None = None
    locale: str = ""


def recipient_address(customer: Customer | None, *, channel: str, to: str = "") -> tuple[str, bool]:
    """(the address for `channel`, whether it is usable)."""
    if channel == Channel.EMAIL:
        address = (to or getattr(customer, "email", "") or "").strip()
        try:
            validate_email(address)
        except ValidationError:
            return address, False
        return address, True
    if channel == Channel.SMS:
        address = (to or getattr(customer, "phone", "") or "").strip().replace(" ", "")
        return address, phone_is_valid(address)
    if channel == Channel.IN_APP:
        return "", customer is not None
    return to, bool(to)


def _decide(
    customer: Customer | None, *, channel: str, purpose: str, address_ok: bool, priority: int, cause: str, now: datetime
) -> governance.Decision:
    refusal = consent.consent_refusal(customer, channel=channel, purpose=purpose)
    if refusal:
        return governance.Decision(reason=refusal)
    if not address_ok:
        return governance.Decision(reason=DeliveryReason.INVALID_ADDRESS)
    if purpose != Purpose.MARKETING:
        return governance.SEND_NOW  # transactional messages are exempt from caps and quiet hours
    return governance.governance_decide(
        customer, channel=channel, purpose=purpose, priority=priority, cause=cause, now=now
    )


def delivery_queue(
    *,
    key: str,
    channel: str,
    purpose: str,
    customer: Customer | None,
    content: Content,
    cause: str = "",
    to: str = "",
    priority: int = 0,
    now: datetime | None = None,
) -> Delivery:
    """
    The delivery row for `key` — created once (suppressed with its reason, delayed, or due), or the row an
    earlier attempt created: the same key never makes a second message.
    """
    existing = Delivery.objects.filter(key=key).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    if channel not in Channel.values or purpose not in Purpose.values:
        raise ValueError(f"unknown channel/purpose {channel!r}/{purpose!r}")
    address, address_ok = recipient_address(customer, channel=channel, to=to)
    decision = _decide(
        customer, channel=channel, purpose=purpose, address_ok=address_ok, priority=priority, cause=cause, now=now
    )
    fields: dict[str, Any] = {
        "key": key,
        "channel": channel,
        "purpose": purpose,
        "customer": customer,
        "to": address[:254],
        "template_key": content.template_key,
        "template_version": content.template_version,
        "locale": content.locale,
        "subject": content.subject[:255],
        "text": content.text,
        "html": content.html,
        "priority": priority,
        "cause": cause[:100],
        "created_at": now,
    }
    if decision.reason:
        fields.update(status=DeliveryStatus.SUPPRESSED, reason=decision.reason)
    elif decision.send_after:
        fields.update(status=DeliveryStatus.QUEUED, reason=DeliveryReason.QUIET_HOURS, send_after=decision.send_after)
    elif channel == Channel.IN_APP:
        # Nothing to hand to a provider: the message is in the customer's inbox.
        fields.update(status=DeliveryStatus.SENT, sent_at=now)
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(**fields)
            _outrank(decision.outranked)
            return delivery
    except IntegrityError:
        # A concurrent attempt with the same key created it first.
        return Delivery.objects.get(key=key)


def _outrank(ids: tuple[int, ...] | list[int]) -> None:
    """Queued lower-priority messages that a higher-priority workflow's message replaces."""
    if ids:
        Delivery.objects.filter(pk__in=list(ids), status=DeliveryStatus.QUEUED, claim_token="").update(
            status=DeliveryStatus.SUPPRESSED, reason=DeliveryReason.LOWER_PRIORITY, send_after=None
        )


@dataclass(frozen=True)
class Message:
    """One customer's message in a set-based send (a bulk run)."""

    key: str
    customer: Customer
    content: Content
    to: str = ""


def deliveries_queue_many(
    *,
    messages: list[Message],
    channel: str,
    purpose: str,
    cause: str,
    priority: int = 0,
    now: datetime | None = None,
) -> list[int]:
    """
    The rows of a set-based send, decided like `delivery_queue` (consent, address, governance) without a query
    per customer, written in batched INSERTs that skip keys already there (a re-run makes no second row).
    Returns the ids of the queued rows due now, for the sending tasks.
    """
    now = now or timezone.now()
    if not messages:
        return []
    customers = [message.customer for message in messages]
    decisions = governance.governance_decide_many(
        customers, channel=channel, purpose=purpose, priority=priority, cause=cause, now=now
    )
    refusals = consent.consent_refusals_many(customers, channel=channel, purpose=purpose)
    outranked: list[int] = []
    rows = []
    for message in messages:
        customer = message.customer
        address, address_ok = recipient_address(customer, channel=channel, to=message.to)
        refusal = refusals.get(customer.pk)
        decision = governance.SEND_NOW
        if refusal:
            decision = governance.Decision(reason=refusal)
        elif not address_ok:
            decision = governance.Decision(reason=DeliveryReason.INVALID_ADDRESS)
        elif purpose == Purpose.MARKETING:
            decision = decisions.get(customer.pk, governance.SEND_NOW)
            if not decision.reason:
                outranked += decision.outranked
        row = Delivery(
            key=message.key,
            channel=channel,
            purpose=purpose,
            customer=customer,
            to=address[:254],
            template_key=message.content.template_key,
            template_version=message.content.template_version,
            locale=message.content.locale,
            subject=message.content.subject[:255],
            text=message.content.text,
            html=message.content.html,
            priority=priority,
            cause=cause[:100],
            created_at=now,
        )
        if decision.reason:
            row.status, row.reason = DeliveryStatus.SUPPRESSED, decision.reason
        elif decision.send_after:
            row.reason, row.send_after = DeliveryReason.QUIET_HOURS, decision.send_after
        elif channel == Channel.IN_APP:
            row.status, row.sent_at = DeliveryStatus.SENT, now
        rows.append(row)
    Delivery.objects.bulk_create(rows, batch_size=1_000, ignore_conflicts=True)
    _outrank(outranked)
    keys = [row.key for row in rows if row.status == DeliveryStatus.QUEUED and row.send_after is None]
    due: list[int] = []
    for start in range(0, len(keys), 5_000):
        due += Delivery.objects.filter(
            key__in=keys[start : start + 5_000], status=DeliveryStatus.QUEUED, send_after__isnull=True
        ).values_list("pk", flat=True)
    return sorted(due)


def task_timeout() -> float:
    """Seconds a django-q2 task may run before the cluster kills its worker (Q_CLUSTER `timeout`)."""
    return float(settings.Q_CLUSTER.get("timeout") or 120)


def claim_ttl() -> timedelta:
    """How long a claim holds: CLAIM_TTL, and always at least twice the task timeout."""
    return max(CLAIM_TTL, timedelta(seconds=2 * task_timeout()))


def send_budget() -> float:
    """
    Seconds a sender takes new rows for: half the task timeout. The other half is the margin for the send in
    flight (each SMTP step is bounded by EMAIL_TIMEOUT, 30 s) and saving, so the cluster's timeout never kills
    a sender between a send and its record — the one way a claimed row could be sent twice.
    """
    return task_timeout() / 2


def _waited(now: datetime) -> Q:
    """
    Rows decided a while ago that are decided again at send time: delayed (quiet hours), retried after a
    transient provider error, or due but orphaned (their sending task was lost).
    """
    return Q(send_after__isnull=False) | Q(attempts__gt=0) | Q(created_at__lt=now - ORPHANED_AFTER)


def _claim(ids: Iterable[int], now: datetime) -> tuple[list[Delivery], list[Delivery]]:
    """
    Claim the due, unclaimed queued rows among `ids` for this sender (one UPDATE): (the rows to send, the rows
    decided again instead). Rows that waited are decided again first (`_recheck`), under the row locks of
    their customers, so two senders re-checking one customer's rows take turns; the rows it refuses or
    delays again are not sent.
    """
    token = uuid.uuid4().hex
    due = (
        Delivery.objects.filter(pk__in=list(ids), status=DeliveryStatus.QUEUED)
        .filter(Q(send_after__isnull=True) | Q(send_after__lte=now))
        .filter(Q(claim_token="") | Q(claimed_at__lt=now - claim_ttl()))
    )
    waiting = set(due.filter(_waited(now), customer__isnull=False).values_list("customer_id", flat=True))
    if not waiting:
        if not due.update(claim_token=token, claimed_at=now, attempts=F("attempts") + 1):
            return [], []
        return list(Delivery.objects.filter(claim_token=token).select_related("customer").order_by("pk")), []
    with transaction.atomic():
        # Ordered row locks (the customers), taken before the claim: see governance_recheck_many.
        list(Customer.objects.filter(pk__in=sorted(waiting)).order_by("pk").select_for_update().values_list("pk"))
        due.update(claim_token=token, claimed_at=now, attempts=F("attempts") + 1)
        batch = list(Delivery.objects.filter(claim_token=token).select_related("customer").order_by("pk"))
        decided = _recheck([row for row in batch if row.customer_id in waiting], token=token, now=now)
    return [row for row in batch if row.pk not in decided], [row for row in batch if row.pk in decided]


def _recheck(rows: list[Delivery], *, token: str, now: datetime) -> set[int]:
    """
    Decide claimed rows that waited again, at send time: consent and the suppression list (every purpose:
    a transactional retry to a bounced address is pointless), then for marketing the frequency caps and the
    quiet hours (`governance.governance_recheck_many`). A refused row becomes `suppressed` with the reason, a
    row back in quiet hours is queued again with its new `send_after`; neither counts as an attempt.
    Returns the ids of those rows (saved here).
    """
    rows = [row for row in rows if row.customer is not None]
    changed: list[Delivery] = []
    for channel in sorted({row.channel for row in rows}):
        for purpose in sorted({row.purpose for row in rows if row.channel == channel}):
            group = [row for row in rows if row.channel == channel and row.purpose == purpose]
            customers = list({row.customer_id: row.customer for row in group if row.customer is not None}.values())
            refusals = consent.consent_refusals_many(customers, channel=channel, purpose=purpose)
            for row in group:
                if row.customer_id in refusals:
                    row.status, row.reason, row.send_after = DeliveryStatus.SUPPRESSED, refusals[row.customer_id], None
                    changed.append(row)
    refused = {row.pk for row in changed}
    decisions = governance.governance_recheck_many(
        [row for row in rows if row.pk not in refused], token=token, claim_ttl=claim_ttl(), now=now
    )
    for row in rows:
        decision = decisions.get(row.pk)
        if decision is None:
            continue
        if decision.reason:
            row.status, row.reason, row.send_after = DeliveryStatus.SUPPRESSED, decision.reason, None
        else:
            row.reason, row.send_after = DeliveryReason.QUIET_HOURS, decision.send_after
        changed.append(row)
    for row in changed:
        row.claim_token, row.claimed_at, row.attempts = "", None, max(0, row.attempts - 1)
    Delivery.objects.bulk_update(changed, ["status", "reason", "send_after", "claim_token", "claimed_at", "attempts"])
    return {row.pk for row in changed}


def backoff(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: 30 s, 1 min, 2 min, … at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def _send_one(delivery: Delivery, *, connection: Any, from_email: str = "") -> str:
    if delivery.channel == Channel.EMAIL:
        headers = consent.unsubscribe_headers(delivery.customer, channel=delivery.channel, purpose=delivery.purpose)
        return email_send(delivery, headers=headers, connection=connection, from_email=from_email)
    if delivery.channel == Channel.SMS:
        return sms_backend().send(to=delivery.to, text=delivery.text, key=delivery.key)
    if delivery.channel == Channel.IN_APP:
        return ""
    raise ProviderError(f"channel {delivery.channel!r} is not sent from the queue", transient=False)


def _outcome(delivery: Delivery, *, now: datetime, connection: Any, from_email: str = "") -> Delivery:
    """Send one claimed row and set its new state on the instance (saved by the caller)."""
    delivery.claim_token = ""
    delivery.claimed_at = None
    try:
        delivery.provider_message_id = _send_one(delivery, connection=connection, from_email=from_email)
    except ProviderError as error:
        return _failed(delivery, error, now=now)
    delivery.status = DeliveryStatus.SENT
    delivery.reason = ""
    delivery.error = ""
    delivery.sent_at = timezone.now()
    return delivery


def _failed(delivery: Delivery, error: ProviderError, *, now: datetime) -> Delivery:
    delivery.claim_token = ""
    delivery.claimed_at = None
    delivery.error = str(error)[:500]
    if error.transient and delivery.attempts < settings.MESSAGING_MAX_ATTEMPTS:
        delivery.send_after = now + backoff(delivery.attempts)  # stays queued: retried when due
    else:
        delivery.status, delivery.reason = DeliveryStatus.FAILED, error.reason
        if error.reason == DeliveryReason.INVALID_ADDRESS:
            consent.hard_bounce(delivery.to, channel=delivery.channel)  # never tried again
    return delivery


def _open(connection: Any) -> ProviderError | None:
    """Open the batch's one e-mail connection; the error when the server cannot be reached."""
    if connection is None:
        return None
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as error:
        return ProviderError(f"{type(error).__name__}: {error}"[:500], transient=True)
    return None


SAVED_FIELDS = [
    "status",
    "reason",
    "error",
    "provider_message_id",
    "send_after",
    "sent_at",
    "claim_token",
    "claimed_at",
]


def _save(rows: list[Delivery]) -> None:
    """The sent (or failed, or retried) rows' new states in ONE statement, whatever their number (`rows_update`)."""
    rows_update(Delivery, rows, SAVED_FIELDS, also={"updated_at": timezone.now()})


def _release(ids: list[int], token: str) -> None:
    """Hand claimed rows that were not sent back to the queue, as if never claimed (no attempt counted)."""
    if ids:
        Delivery.objects.filter(pk__in=ids, claim_token=token).update(
            claim_token="", claimed_at=None, attempts=F("attempts") - 1
        )


def deliveries_send(*, ids: Iterable[int], now: datetime | None = None, budget: float | None = None) -> dict[str, int]:
    """
    Send the due queued deliveries among `ids` (claimed first, so a row another sender holds or already
    sent is skipped): e-mails share one connection per batch of BATCH_SIZE. Returns counts by new status.
    Safe to run twice: a second run finds nothing to claim.

    Outcomes are saved every SAVE_EVERY sends (one UPDATE each). A sender takes new rows for `budget` seconds
    (`send_budget()`: half the task timeout); then it saves what it sent, releases the rest of its claim and
    enqueues a new task for the ids it did not reach — it is never killed by the timeout between a send and
    its record, and its claim (`claim_ttl()`) outlives the task, so no row is claimed twice while it lives.
    """
    started = monotonic()
    stop_at = started + (send_budget() if budget is None else budget)
    now = now or timezone.now()
    ids = list(ids)
    counts: dict[str, int] = {}
    for start in range(0, len(ids), BATCH_SIZE):
        if monotonic() >= stop_at:
            _continue_later(ids[start:])
            break
        batch, decided = _claim(ids[start : start + BATCH_SIZE], now)
        for row in decided:
            counts[row.status] = counts.get(row.status, 0) + 1
        if not batch:
            continue
        done = _send_batch(batch, now=now, stop_at=stop_at, counts=counts)
        if done < len(batch):
            _release([row.pk for row in batch[done:]], batch[done].claim_token)
            _continue_later([row.pk for row in batch[done:]] + ids[start + BATCH_SIZE :])
            break
    return counts


def _continue_later(ids: list[int]) -> None:
    """The ids a sender out of time did not reach: a new sending task (they stay queued meanwhile)."""
    if ids:
        logger.info("messaging: sender out of time, %d deliveries handed to a new task", len(ids))
        task_queue.enqueue_on_commit("apps.customers.messaging.tasks.deliveries_send_task", ids)


def _send_batch(batch: list[Delivery], *, now: datetime, stop_at: float, counts: dict[str, int]) -> int:
    """
    Send a claimed batch on one connection, saving outcomes every SAVE_EVERY sends; stops taking rows at
    `stop_at` (monotonic). Returns how many rows of the batch it handled (the rest are still claimed).
    """
    emails = any(row.channel == Channel.EMAIL for row in batch)
    connection_ = email_connection() if emails else None
    from_email = email_sender() if emails else ""  # the brand's sender, read once per batch
    handled = 0
    unsaved: list[Delivery] = []
    try:
        unreachable = _open(connection_)
        for delivery in batch:
            if monotonic() >= stop_at:
                break
            if unreachable is not None and delivery.channel == Channel.EMAIL:
                _failed(delivery, unreachable, now=now)
            else:
                _outcome(delivery, now=now, connection=connection_, from_email=from_email)
            counts[delivery.status] = counts.get(delivery.status, 0) + 1
            handled += 1
            unsaved.append(delivery)
            if len(unsaved) >= SAVE_EVERY:
                _save(unsaved)
                unsaved = []
    finally:
        if connection_ is not None:
            connection_.close()
        # Saved even when the loop was cut short by an error: rows left claimed are retried after the claim.
        _save(unsaved)
    return handled


def delivery_send(*, delivery: Delivery, now: datetime | None = None) -> Delivery:
    """Send one delivery now if it is due and queued; returns the row as it now stands."""
    deliveries_send(ids=[delivery.pk], now=now)
    delivery.refresh_from_db()
    return delivery


def message_send(
    *,
    key: str,
    channel: str,
    purpose: str,
    customer: Customer | None,
    content: Content,
    cause: str = "",
    to: str = "",
    priority: int = 0,
) -> Delivery:
    """Queue a message (once per key) and, when it is due, send it right away."""
    delivery = delivery_queue(
        key=key,
        channel=channel,
        purpose=purpose,
        customer=customer,
        content=content,
        cause=cause,
        to=to,
        priority=priority,
    )
    if delivery.status == DeliveryStatus.QUEUED and delivery.send_after is None:
        return delivery_send(delivery=delivery)
    return delivery


def deliveries_due_send(*, now: datetime | None = None, limit: int = 2_000) -> dict[str, int]:
    """Periodic: send queued deliveries that are due (delayed by quiet hours, waiting for a retry, orphaned)."""
    now = now or timezone.now()
    delayed = Delivery.objects.filter(status=DeliveryStatus.QUEUED, send_after__lte=now)
    # Due rows whose sending task was lost (an enqueue is best-effort; the row is the record).
    orphaned = Delivery.objects.filter(
        status=DeliveryStatus.QUEUED, send_after__isnull=True, created_at__lt=now - ORPHANED_AFTER
    )
    ids = list(delayed.order_by("send_after").values_list("pk", flat=True)[:limit])
    ids += orphaned.order_by("pk").values_list("pk", flat=True)[: max(0, limit - len(ids))]
    return deliveries_send(ids=ids, now=now)


def inbox_mark_read(*, customer: Customer, delivery_id: int, now: datetime | None = None) -> bool:
    """Mark one of the customer's in-app messages read; False when it is not theirs (or already read)."""
    updated = Delivery.objects.filter(
        pk=delivery_id, customer=customer, channel=Channel.IN_APP, status=DeliveryStatus.SENT, read_at__isnull=True
    ).update(read_at=now or timezone.now())
    return bool(updated)


def delivery_record_sent(
    *, key: str, channel: str, customer: Customer | None, to: str, provider_message_id: str, cause: str = ""
) -> Delivery:
    """Record a message another transport already sent (a signed webhook), once per key."""
    now = timezone.now()
    delivery, _ = Delivery.objects.get_or_create(
        key=key,
        defaults={
            "channel": channel,
            "purpose": Purpose.TRANSACTIONAL,
            "customer": customer,
            "to": to[:254],
            "status": DeliveryStatus.SENT,
            "provider_message_id": provider_message_id[:255],
            "attempts": 1,
            "cause": cause[:100],
            "created_at": now,
            "sent_at": now,
        },
    )
    return delivery
