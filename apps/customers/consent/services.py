"""
Consent services: the one answer to "may we send?" (`allows`), consent changes (audited, mirrored on the
customer's `accepts_marketing` / `unsubscribed_at` for e-mail marketing), double opt-in, one-click
unsubscribe (RFC 8058) and the suppression list.

The interface other apps call (keep these signatures):
    allows(customer, *, channel, purpose) -> str | None
    unsubscribe_headers(customer, *, channel, purpose) -> dict[str, str]
    unsubscribe_url(customer, *, channel, purpose) -> str
    suppress(address, *, channel, reason) -> None
    request_double_opt_in(customer, *, channel="email", source) -> None
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone

from apps.platform.audit import audit_record, audit_snapshot

from .. import signals
from ..choices import CustomerStatus
from ..models import Customer
from ..outbox import customer_event_emit, customer_updated_emit
from .addresses import address_normalise, customer_address
from .choices import Channel, ConsentStatus, DenyReason, Purpose, SuppressionReason
from .models import Consent, ConsentEvent, Suppression
from .rules import effective_status

logger = logging.getLogger(__name__)

CONFIRM_SALT = "customers.consent.confirm.v1"
UNSUBSCRIBE_SALT = "customers.consent.unsubscribe.v1"
MAX_SOURCE_LENGTH = 64
# Consent changes coming from these sources ask for double opt-in when CONSENT_DOUBLE_OPT_IN is on (a
# self-service sign-up); an admin, a CSV import of history or a store's own consent record does not.
DOUBLE_OPT_IN_SOURCES = ("api", "form:")


# --- validation ---------------------------------------------------------------------------------------


def _channel_clean(channel: str, path: str = "channel") -> str:
    if channel not in Channel.values:
        raise ValidationError({path: f"Unknown channel {channel!r}; one of {', '.join(Channel.values)}."})
    return channel


def _purpose_clean(purpose: str, path: str = "purpose") -> str:
    if purpose not in Purpose.values:
        raise ValidationError({path: f"Unknown purpose {purpose!r}; one of {', '.join(Purpose.values)}."})
    return purpose


def _source_clean(source: str, path: str = "source") -> str:
    source = (source or "").strip()
    if not source:
        raise ValidationError({path: "Say where the consent came from (api, admin, csv, form:<slug>, …)."})
    if len(source) > MAX_SOURCE_LENGTH:
        raise ValidationError({path: f"At most {MAX_SOURCE_LENGTH} characters."})
    return source


def source_from_cause(cause: str) -> str:
    """The consent source for a write cause: `api:token:3` → api, `import:<file>` → csv, others stay, "" → system."""
    if not cause:
        return "system"
    if cause.startswith("api"):
        return "api"
    if cause.startswith("import:"):
        return "csv"
    return cause[:MAX_SOURCE_LENGTH]


# --- may we send? -------------------------------------------------------------------------------------


def allows(customer: Customer, *, channel: str, purpose: str) -> str | None:
    """
    None when a message of `purpose` may go to the customer on `channel`, else the reason it may not:
    "blocked" (fraud status), "suppressed" (the address bounced, complained or was suppressed by hand),
    "unsubscribed" (consent withdrawn), "unconfirmed" (double opt-in pending), "no_consent".
    Transactional messages need no consent, only an address that is not suppressed and no withdrawal.
    Two indexed queries.
    """
    _channel_clean(channel)
    _purpose_clean(purpose)
    if customer.status == CustomerStatus.BLOCKED:
        return DenyReason.BLOCKED.value
    address = customer_address(customer, channel=channel)
    if address and Suppression.objects.filter(channel=channel, address=address).exists():
        return DenyReason.SUPPRESSED.value
    row = Consent.objects.filter(customer_id=customer.pk, channel=channel, purpose=purpose).first()
    status = effective_status(customer, row, channel=channel, purpose=purpose)
    if status == ConsentStatus.WITHDRAWN:
        return DenyReason.UNSUBSCRIBED.value
    if purpose == Purpose.TRANSACTIONAL:
        return None
    if status == ConsentStatus.GRANTED:
        return None
    if status == ConsentStatus.PENDING:
        return DenyReason.UNCONFIRMED.value
    return DenyReason.NO_CONSENT.value


def customers_allowed(queryset: QuerySet[Customer], *, channel: str, purpose: str) -> QuerySet[Customer]:
    """
    The set-based `allows`: the customers of `queryset` that may receive a `purpose` message on `channel`
    (one SQL query with EXISTS sub-queries, for bulk sends over many customers). Agrees with `allows`.
    """
    _channel_clean(channel)
    _purpose_clean(purpose)
    rows = Consent.objects.filter(customer_id=OuterRef("pk"), channel=channel, purpose=purpose)
    queryset = queryset.exclude(status=CustomerStatus.BLOCKED)
    if channel in (Channel.EMAIL, Channel.SMS):
        column = "email" if channel == Channel.EMAIL else "phone"
        # E-mails are stored lower-case by the services; phones are compared as stored.
        queryset = queryset.exclude(
            Exists(Suppression.objects.filter(channel=channel, address=OuterRef(column))) & ~Q(**{column: ""})
        )
    withdrawn = Exists(rows.filter(status=ConsentStatus.WITHDRAWN))
    if purpose == Purpose.TRANSACTIONAL:
        return queryset.exclude(withdrawn)
    granted = Exists(rows.filter(status=ConsentStatus.GRANTED))
    if channel in (Channel.EMAIL, Channel.IN_APP):
        return queryset.filter(granted | (~Exists(rows) & Q(accepts_marketing=True)))
    return queryset.filter(granted)


# --- consent changes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentOutcome:
    consent: Consent
    old_status: str | None
    changed: bool


def _mirror(customer: Customer, consent: Consent, cause: str) -> None:
    """E-mail marketing is mirrored on the customer's columns (filters, catalog field, bulk imports)."""
    if consent.channel != Channel.EMAIL or consent.purpose != Purpose.MARKETING:
        return
    accepts = consent.status == ConsentStatus.GRANTED
    unsubscribed_at = consent.withdrawn_at if consent.status == ConsentStatus.WITHDRAWN else None
    if customer.accepts_marketing == accepts and customer.unsubscribed_at == unsubscribed_at:
        return
    changed_accepts = customer.accepts_marketing != accepts
    customer.accepts_marketing = accepts
    customer.unsubscribed_at = unsubscribed_at
    Customer.objects.filter(pk=customer.pk).update(
        accepts_marketing=accepts, unsubscribed_at=unsubscribed_at, updated_at=timezone.now()
    )
    if changed_accepts:
        customer_updated_emit(customer=customer, cause=cause, fields=["accepts_marketing"])


def _consent_event_emit(signal: Signal, customer: Customer, consent: Consent, cause: str) -> None:
    """`customer.unsubscribed` / `customer.consent_confirmed`: which channel and purpose, in the payload."""
    customer_event_emit(
        signal=signal,
        customer=customer,
        cause=cause,
        payload={"channel": consent.channel, "purpose": consent.purpose},
    )


def _locked(customer: Customer, channel: str, purpose: str) -> tuple[Customer, Consent | None]:
    """Lock the customer row first (one order for every consent write), then read the consent row."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    row = Consent.objects.select_for_update().filter(customer=locked, channel=channel, purpose=purpose).first()
    return locked, row


@transaction.atomic
def consent_set(
    *,
    customer: Customer,
    channel: str,
    purpose: str,
    status: str,
    source: str,
    cause: str = "",
    at: datetime | None = None,
) -> ConsentOutcome:
    """
    Record a consent state for the customer x channel x purpose (audited; e-mail marketing is mirrored on
    the customer). A withdrawal of marketing consent sends `customer.unsubscribed` once (setting it again
    sends nothing). Setting the status it already has changes nothing (the first source is kept).
    """
    _channel_clean(channel)
    _purpose_clean(purpose)
    if status not in ConsentStatus.values:
        raise ValidationError(
            {"status": f"Unknown consent status {status!r}; one of {', '.join(ConsentStatus.values)}."}
        )
    source = _source_clean(source)
    cause = cause or source
    at = at or timezone.now()
    locked, row = _locked(customer, channel, purpose)
    old = effective_status(locked, row, channel=channel, purpose=purpose)
    if row is not None and row.status == status:
        return ConsentOutcome(consent=row, old_status=old, changed=False)
    before = audit_snapshot(row) if row is not None else None
    if row is None:
        row = Consent(customer=locked, channel=channel, purpose=purpose, created_at=at)
    row.status = status
    row.source = source
    if status == ConsentStatus.GRANTED:
        row.granted_at = at
        row.withdrawn_at = None
    elif status == ConsentStatus.WITHDRAWN:
        row.withdrawn_at = at
    else:
        row.requested_at = at
        row.withdrawn_at = None
    row.save()
    entry = audit_record(action="updated" if before is not None else "created", obj=row, before=before)
    ConsentEvent.objects.create(
        customer=locked,
        channel=channel,
        purpose=purpose,
        old_status=old or "",
        new_status=status,
        source=source,
        cause=cause[:64],
        actor_label=entry.actor_label if entry is not None else "",
        created_at=at,
    )
    _mirror(locked, row, cause)
    if status == ConsentStatus.WITHDRAWN and purpose == Purpose.MARKETING and old != ConsentStatus.WITHDRAWN:
        _consent_event_emit(signals.customer_unsubscribed, locked, row, cause)
    _sync_caller(customer, locked)
    return ConsentOutcome(consent=row, old_status=old, changed=old != status)


def _sync_caller(customer: Customer, locked: Customer) -> None:
    """The caller's instance sees the mirror columns as stored."""
    customer.accepts_marketing = locked.accepts_marketing
    customer.unsubscribed_at = locked.unsubscribed_at


def consent_withdraw(
    *,
    customer: Customer,
    channel: str = Channel.EMAIL,
    purpose: str = Purpose.MARKETING,
    source: str,
    cause: str = "",
    at: datetime | None = None,
) -> ConsentOutcome:
    """Unsubscribe: withdraw the consent (`customer.unsubscribed` once for marketing)."""
    return consent_set(
        customer=customer,
        channel=channel,
        purpose=purpose,
        status=ConsentStatus.WITHDRAWN,
        source=source,
        cause=cause,
        at=at,
    )


def double_opt_in_required(*, channel: str, purpose: str, source: str) -> bool:
    """
    A self-service grant of marketing e-mail or SMS waits for the confirmation link when CONSENT_DOUBLE_OPT_IN
    is on (the link goes by e-mail, or by SMS to the phone that signed up).
    """
    return (
        getattr(settings, "CONSENT_DOUBLE_OPT_IN", False)
        and channel in (Channel.EMAIL, Channel.SMS)
        and purpose == Purpose.MARKETING
        and source.startswith(DOUBLE_OPT_IN_SOURCES)
    )


def consent_grant(
    *, customer: Customer, channel: str, purpose: str = Purpose.MARKETING, source: str, cause: str = ""
) -> ConsentOutcome:
    """
    Grant consent — or, for a self-service e-mail marketing sign-up when CONSENT_DOUBLE_OPT_IN is on, record
    it pending and send the confirmation link (only a confirmed customer then receives marketing).
    """
    if double_opt_in_required(channel=channel, purpose=purpose, source=source):
        current = Consent.objects.filter(customer_id=customer.pk, channel=channel, purpose=purpose).first()
        if current is not None and current.status == ConsentStatus.GRANTED:
            return ConsentOutcome(consent=current, old_status=current.status, changed=False)
        request_double_opt_in(customer, channel=channel, source=source)
        row = Consent.objects.get(customer_id=customer.pk, channel=channel, purpose=purpose)
        return ConsentOutcome(consent=row, old_status=current.status if current else None, changed=True)
    return consent_set(
        customer=customer, channel=channel, purpose=purpose, status=ConsentStatus.GRANTED, source=source, cause=cause
    )


def consents_of(customer: Customer) -> dict[tuple[str, str], str | None]:
    """Each channel x purpose's effective status for one customer (one query)."""
    rows = {(row.channel, row.purpose): row for row in Consent.objects.filter(customer_id=customer.pk)}
    return {
        (channel, purpose): effective_status(customer, rows.get((channel, purpose)), channel=channel, purpose=purpose)
        for channel in Channel.values
        for purpose in Purpose.values
    }


@transaction.atomic
def consent_flag_set(
    *, customer: Customer, channel: str, purpose: str = Purpose.MARKETING, wanted: bool, source: str, cause: str = ""
) -> ConsentOutcome | None:
    """
    A yes/no consent column (the legacy `accepts_marketing`, a CSV's `sms_marketing`): yes grants (pending
    first under double opt-in), no withdraws a granted or pending consent (an unsubscribe) and records
    nothing for a customer who never consented. None when nothing changed.
    """
    stored = Customer.objects.only("accepts_marketing", "unsubscribed_at").get(pk=customer.pk)
    row = Consent.objects.filter(customer_id=customer.pk, channel=channel, purpose=purpose).first()
    status = effective_status(stored, row, channel=channel, purpose=purpose)
    if wanted and status != ConsentStatus.GRANTED:
        return consent_grant(customer=customer, channel=channel, purpose=purpose, source=source, cause=cause)
    if not wanted and status in (ConsentStatus.GRANTED, ConsentStatus.PENDING):
        return consent_withdraw(customer=customer, channel=channel, purpose=purpose, source=source, cause=cause)
    return None


@transaction.atomic
def consents_apply(*, customer: Customer, items: list[dict[str, Any]], cause: str = "") -> list[ConsentOutcome]:
    """
    Record several consents given together (the customers API's `consents`): `granted` grants (double
    opt-in aware), `pending` asks for double opt-in, `withdrawn` unsubscribes. Each item's `source`
    defaults to the cause's (`api`).
    """
    outcomes: list[ConsentOutcome] = []
    for item in items:
        channel, purpose, status = item["channel"], item.get("purpose", Purpose.MARKETING), item["status"]
        source = item.get("source") or source_from_cause(cause)
        if status == ConsentStatus.GRANTED:
            outcomes.append(
                consent_grant(customer=customer, channel=channel, purpose=purpose, source=source, cause=cause)
            )
        elif status == ConsentStatus.PENDING:
            request_double_opt_in(customer, channel=channel, source=source)
            row = Consent.objects.get(customer_id=customer.pk, channel=channel, purpose=purpose)
            outcomes.append(ConsentOutcome(consent=row, old_status=None, changed=True))
        else:
            outcomes.append(
                consent_set(
                    customer=customer, channel=channel, purpose=purpose, status=status, source=source, cause=cause
                )
            )
    return outcomes


# --- double opt-in ------------------------------------------------------------------------------------


def confirm_max_age() -> timedelta:
    return timedelta(hours=getattr(settings, "CONSENT_CONFIRM_MAX_AGE_HOURS", 72))


def site_url(path: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def confirm_token(consent: Consent) -> str:
    return signing.dumps({"c": consent.pk, "n": consent.confirm_nonce}, salt=CONFIRM_SALT, compress=True)


def confirm_url(consent: Consent) -> str:
    return site_url(reverse("consent-confirm", kwargs={"token": confirm_token(consent)}))


@transaction.atomic
def request_double_opt_in(customer: Customer, *, channel: str = "email", source: str) -> None:
    """
    Record e-mail (or SMS) marketing consent as pending and send a signed confirmation link that expires
    after CONSENT_CONFIRM_MAX_AGE_HOURS (default 72). A new request makes older links void. A customer
    already granted is left as is (nothing is sent).
    """
    _channel_clean(channel)
    if channel == Channel.IN_APP:
        raise ValidationError({"channel": "In-app consent needs no double opt-in."})
    source = _source_clean(source)
    locked, row = _locked(customer, channel, Purpose.MARKETING)
    if row is not None and row.status == ConsentStatus.GRANTED:
        return
    if not customer_address(locked, channel=channel):
        raise ValidationError({channel: f"The customer has no {Channel(channel).label} address to confirm."})
    change = consent_set(
        customer=locked, channel=channel, purpose=Purpose.MARKETING, status=ConsentStatus.PENDING, source=source
    )
    consent = change.consent
    Consent.objects.filter(pk=consent.pk).update(confirm_nonce=consent.confirm_nonce + 1, requested_at=timezone.now())
    consent.refresh_from_db()
    url = confirm_url(consent)
    transaction.on_commit(lambda: _confirmation_send(consent.pk, url), robust=True)


def _confirmation_send(consent_id: int, url: str) -> None:
    """The confirmation message (transactional), after commit: slow I/O never holds the consent row."""
    consent = Consent.objects.select_related("customer").filter(pk=consent_id).first()
    if consent is None or consent.status != ConsentStatus.PENDING:
        return
    customer = consent.customer
    if consent.channel not in (Channel.EMAIL, Channel.SMS):
        return
    if allows(customer, channel=consent.channel, purpose=Purpose.TRANSACTIONAL) is not None:
        return
    # Through messaging's pipeline as a transactional message on the consent's own channel: a Delivery row
    # (visible on the customer page), once per link (the key carries the nonce), retried on transient provider
    # errors, never capped nor delayed by quiet hours.
    from apps.customers.messaging.rendering import inline_content
    from apps.customers.messaging.services import Content, message_send

    hours = int(confirm_max_age().total_seconds() // 3600)
    if consent.channel == Channel.SMS:
        from apps.customers.messaging.templating.selectors import get_brand

        # Short (one or two SMS segments): who asks, the link, how long it works.
        sender = get_brand().name or "We"
        text = f"{sender}: please confirm you want our offers by SMS: {url} (valid {hours} h). Not you? Ignore this."
        content = Content(text=text)
    else:
        body = (
            f"Hello {customer.first_name or ''}".rstrip()
            + f",\n\nPlease confirm that you want to receive our news and offers:\n{url}\n\n"
            f"The link works for {hours} hours. If you did not sign up, ignore this message.\n"
        )
        content = inline_content(subject="Please confirm your subscription", body=body)
    message_send(
        key=f"consent_confirm:{consent.pk}:{consent.confirm_nonce}",
        channel=consent.channel,
        purpose=Purpose.TRANSACTIONAL,
        customer=customer,
        content=content,
        cause=f"consent_confirm:{consent.pk}",
    )


def confirm_claims(token: str) -> tuple[int, int] | None:
    """(consent id, nonce) of a confirmation token, or None when tampered with or expired."""
    try:
        claims = signing.loads(token, salt=CONFIRM_SALT, max_age=confirm_max_age())
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("c"), int) or not isinstance(claims.get("n"), int):
        return None
    return claims["c"], claims["n"]


@transaction.atomic
def consent_confirm(*, token: str) -> tuple[str, Consent | None]:
    """
    Click on a confirmation link: "confirmed" (pending → granted, `customer.consent_confirmed` sent),
    "already" (a replay: nothing changes, nothing fires), "invalid" (tampered, expired, superseded or
    withdrawn since).
    """
    claims = confirm_claims(token)
    if claims is None:
        return "invalid", None
    consent_id, nonce = claims
    consent = Consent.objects.filter(pk=consent_id).first()
    if consent is None:
        return "invalid", None
    locked, row = _locked(consent.customer, consent.channel, consent.purpose)
    if row is None or row.pk != consent_id or row.confirm_nonce != nonce:
        return "invalid", None
    if row.status == ConsentStatus.GRANTED and row.confirmed_at is not None:
        return "already", row
    if row.status != ConsentStatus.PENDING:
        return "invalid", row
    change = consent_set(
        customer=locked,
        channel=row.channel,
        purpose=row.purpose,
        status=ConsentStatus.GRANTED,
        source=row.source,
        cause="double_opt_in",
    )
    row = change.consent
    row.confirmed_at = timezone.now()
    row.save(update_fields=["confirmed_at", "updated_at"])
    _consent_event_emit(signals.customer_consent_confirmed, locked, row, "double_opt_in")
    return "confirmed", row


# --- unsubscribe links (RFC 8058) ---------------------------------------------------------------------


def unsubscribe_token(customer: Customer, *, channel: str, purpose: str) -> str:
    # No expiry: an unsubscribe link in an old message must keep working (CAN-SPAM: at least 30 days).
    # Not timestamped either: the same customer, channel and purpose always give the same link.
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object(
        {"u": customer.pk, "ch": channel, "p": purpose}, compress=True
    )


def unsubscribe_claims(token: str) -> tuple[int, str, str] | None:
    """(customer id, channel, purpose) of an unsubscribe token, or None when tampered with."""
    try:
        claims = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("u"), int):
        return None
    channel, purpose = claims.get("ch"), claims.get("p")
    if channel not in Channel.values or purpose not in Purpose.values:
        return None
    return claims["u"], str(channel), str(purpose)


def unsubscribe_url(customer: Customer, *, channel: str, purpose: str) -> str:
    """The absolute, signed link of the message footer (GET shows a confirm page; POST unsubscribes)."""
    _channel_clean(channel)
    _purpose_clean(purpose)
    return site_url(
        reverse("consent-unsubscribe", kwargs={"token": unsubscribe_token(customer, channel=channel, purpose=purpose)})
    )


def unsubscribe_headers(customer: Customer, *, channel: str, purpose: str) -> dict[str, str]:
    """RFC 8058 one-click headers for a marketing e-mail; {} for anything else."""
    if channel != Channel.EMAIL or purpose != Purpose.MARKETING:
        return {}
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(customer, channel=channel, purpose=purpose)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe_by_token(*, token: str) -> tuple[str, Customer | None]:
    """A one-click POST or the confirm page's button: "unsubscribed", "already", or "invalid"."""
    claims = unsubscribe_claims(token)
    if claims is None:
        return "invalid", None
    customer_id, channel, purpose = claims
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return "invalid", None
    change = consent_withdraw(
        customer=customer, channel=channel, purpose=purpose, source="unsubscribe_link", cause="unsubscribe_link"
    )
    return ("unsubscribed" if change.changed else "already"), customer


# --- suppression list ---------------------------------------------------------------------------------


@transaction.atomic
def suppression_add(*, address: str, channel: str, reason: str, source: str = "") -> Suppression:
    """Suppress an address on a channel (audited); suppressing it again keeps the first row."""
    _channel_clean(channel)
    if channel == Channel.IN_APP:
        raise ValidationError({"channel": "In-app messages have no address to suppress."})
    if reason not in SuppressionReason.values:
        raise ValidationError({"reason": f"Unknown reason {reason!r}; one of {', '.join(SuppressionReason.values)}."})
    normalised = address_normalise(address, channel=channel)
    if not normalised:
        raise ValidationError({"address": "An address is required."})
    if len(normalised) > 254:
        raise ValidationError({"address": "At most 254 characters."})
    if channel == Channel.EMAIL and "@" not in normalised:
        raise ValidationError({"address": "Enter a valid e-mail address."})
    existing = Suppression.objects.filter(channel=channel, address=normalised).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            row = Suppression.objects.create(address=normalised, channel=channel, reason=reason, source=source[:64])
    except IntegrityError:  # a concurrent bounce for the same address won
        return Suppression.objects.get(channel=channel, address=normalised)
    audit_record(action="created", obj=row)
    return row


def suppress(address: str, *, channel: str, reason: str) -> None:
    """A hard bounce or a complaint reported by the sending pipeline: the address receives nothing more."""
    suppression_add(address=address, channel=channel, reason=reason, source="delivery")


@transaction.atomic
def suppression_remove(*, suppression: Suppression) -> None:
    """Lift a suppression (audited)."""
    audit_record(action="deleted", obj=suppression, before=audit_snapshot(suppression))
    suppression.delete()
