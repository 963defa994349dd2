"""
Write services of the code pool (beside the generation and single publication in `services`): CSV import,
bulk publication over a segment (set-based, in chunks), and the low-pool alert.

A pool is a campaign's free codes: active, unused, not published to anyone. When a publication leaves fewer
than `Campaign.low_pool_threshold` of them, the campaign raises `campaign.codes_low` once (outbox trigger, so a
workflow can alert) and e-mails its owner after commit; adding codes (generate, import) re-arms the alert.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, time
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.customers.models import DomainEvent
from apps.customers.outbox import domain_event_emit, domain_event_listened, domain_events_dispatch_ids
from loyalty_site.lib.errors import ConflictError
from loyalty_site.lib.tasks import enqueue_on_commit

from ..models import Segment, SegmentMember
from . import signals
from .eligibility import code_normalize
from .holdout import holdout_partition, holdouts_record
from .models import Campaign, CampaignHoldout, Code

IMPORT_MAX_ROWS = 100_000
IMPORT_MAX_ERRORS = 50
IMPORT_COLUMNS = ("code", "max_uses", "expires_at", "expires_days_after_publication")
PUBLISH_CHUNK = 2000
CODE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def free_codes(campaign: Campaign) -> Any:
    """The campaign's codes nobody holds yet (what `code_publish` hands out)."""
    return Code.objects.filter(
        campaign=campaign, customer__isnull=True, published_at__isnull=True, is_active=True, uses=0
    )


# --- CSV import ---------------------------------------------------------------------------------------------


@dataclass
class ImportedCodes:
    created: int
    campaign: Campaign


def _parse_expiry(text: str) -> datetime | None:
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise ValueError
        moment = datetime.combine(day, time.max.replace(microsecond=0))
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _row_codes(text: str) -> list[dict[str, Any]]:
    """Parse and check every row; ValidationError with `rows[i].field` paths (i counts data rows from 0)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "code" not in header:
        raise ValidationError({"csv": "The first row is a header with at least the column `code`."})
    unknown = sorted(set(header) - set(IMPORT_COLUMNS))
    if unknown:
        raise ValidationError({"csv": f"Unknown columns: {', '.join(unknown)} (known: {', '.join(IMPORT_COLUMNS)})."})
    reader.fieldnames = header
    errors: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(reader):
        if index >= IMPORT_MAX_ROWS:
            raise ValidationError({"csv": f"At most {IMPORT_MAX_ROWS:,} codes per import."})
        if len(errors) >= IMPORT_MAX_ERRORS:
            break
        cells = {key: (value or "").strip() for key, value in raw.items() if key}
        path = f"rows[{index}]"
        text_code = code_normalize(cells.get("code", ""))
        if not text_code or len(text_code) > 64 or not set(text_code) <= CODE_CHARS:
            errors[f"{path}.code"] = "A code has 1 to 64 characters: letters, digits, - and _."
        elif text_code in seen:
            errors[f"{path}.code"] = f"{text_code} is also on row {seen[text_code]}."
        seen.setdefault(text_code, index)
        row: dict[str, Any] = {"code": text_code, "max_uses": 1, "expires_at": None, "expires_days": None}
        if cells.get("max_uses"):
            value = cells["max_uses"]
            if value.lower() in ("unlimited", "none"):
                row["max_uses"] = None
            elif value.isdigit() and 1 <= int(value) <= 1_000_000_000:
                row["max_uses"] = int(value)
            else:
                errors[f"{path}.max_uses"] = "A whole number of uses from 1, or `unlimited`."
        if cells.get("expires_at"):
            try:
                row["expires_at"] = _parse_expiry(cells["expires_at"])
            except (ValueError, OverflowError):
                errors[f"{path}.expires_at"] = "A date (2026-12-31) or an ISO date-time."
        if cells.get("expires_days_after_publication"):
            value = cells["expires_days_after_publication"]
            if value.isdigit() and 1 <= int(value) <= 3650:
                row["expires_days"] = int(value)
            else:
                errors[f"{path}.expires_days_after_publication"] = "A number of days from 1 to 3650."
        rows.append(row)
    if not rows and not errors:
        raise ValidationError({"csv": "The file has no codes."})
    existing = set()
    texts = list(seen)
    for start in range(0, len(texts), 5000):
        existing |= set(Code.objects.filter(code__in=texts[start : start + 5000]).values_list("code", flat=True))
    for index, row in enumerate(rows):
        if row["code"] in existing and len(errors) < IMPORT_MAX_ERRORS:
            errors.setdefault(f"rows[{index}].code", f"The code {row['code']} exists already.")
    if errors:
        raise ValidationError(errors)
    return rows


@transaction.atomic
def codes_import(*, campaign: Campaign, csv_text: str) -> ImportedCodes:
    """
    Import codes from CSV (header `code[,max_uses][,expires_at][,expires_days_after_publication]`; max_uses
    defaults to 1, `unlimited` for none). Every row is checked first: one bad row refuses the whole file with
    the path of each problem (`rows[3].code`) and nothing is written. Stored upper-case, unique.
    """
    rows = _row_codes(csv_text)
    now = timezone.now()
    try:
        Code.objects.bulk_create(
            [
                Code(
                    campaign=campaign,
                    code=row["code"],
                    max_uses=row["max_uses"],
                    expires_at=row["expires_at"],
                    expires_days_after_publication=row["expires_days"],
                    created_at=now,
                )
                for row in rows
            ],
            batch_size=2000,
        )
    except IntegrityError:  # a concurrent import took one of the codes between the check and the insert
        raise ConflictError("Some of these codes were just added by someone else; try again.", path="csv") from None
    pool_rearm(campaign=campaign)
    return ImportedCodes(created=len(rows), campaign=campaign)


def codes_csv_rows(*, campaign: Campaign) -> Any:
    """The export rows (header first) of a campaign's codes, streamed in primary-key order."""
    yield ["code", "max_uses", "uses", "expires_at", "expires_days_after_publication", "customer_id", "published_at"]
    rows = (
        Code.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list(
            "code", "max_uses", "uses", "expires_at", "expires_days_after_publication", "customer_id", "published_at"
        )
    )
    for code, max_uses, uses, expires_at, days, customer_id, published_at in rows.iterator(chunk_size=5000):
        yield [
            code,
            "unlimited" if max_uses is None else max_uses,
            uses,
            expires_at.isoformat() if expires_at else "",
            days or "",
            customer_id or "",
            published_at.isoformat() if published_at else "",
        ]


# --- Bulk publication over a segment ------------------------------------------------------------------------


@dataclass
class SegmentPublication:
    published: int
    without_code: int
    held_out: int = 0


def codes_publish_segment(
    *, campaign: Campaign, segment: Segment, ref: str, now: datetime | None = None
) -> SegmentPublication:
    """
    Publish one free code to each member of the segment who holds no code of this campaign yet. Set-based:
    per chunk of 2,000 members (in customer order) one UPDATE of the codes (paired member ↔ free code in
    primary-key order, free codes taken with SKIP LOCKED), one INSERT of the `voucher.published` outbox rows and
    one INSERT of the members the campaign's holdout keeps out (`CampaignHoldout`: they get no code, recorded
    once as held out); each chunk commits on its own, so a retry continues where it stopped (members already
    holding a code are skipped, held-out ones recorded again are a no-op).
    `without_code`: members left without a code because the pool ran out (neither published nor held out);
    `held_out`: members this publication kept out.
    """
    now = now or timezone.now()
    published = kept_out_total = 0
    announce = domain_event_listened("voucher.published")
    holders = Code.objects.filter(campaign=campaign, customer__isnull=False).values("customer_id")
    waiting = (
        SegmentMember.objects.filter(segment=segment)
        .exclude(customer_id__in=holders)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )
    after = 0  # keyset: held-out members stay without a code, so the next chunk starts after the last one seen
    while True:
        with transaction.atomic():
            customer_ids = list(waiting.filter(customer_id__gt=after)[:PUBLISH_CHUNK])
            if not customer_ids:
                break
            after = customer_ids[-1]
            receive, kept_out = holdout_partition(campaign=campaign, customer_ids=customer_ids)
            codes = (
                list(free_codes(campaign).select_for_update(skip_locked=True).order_by("pk")[: len(receive)])
                if receive
                else []
            )
            if receive and len(codes) < len(receive):
                # The pool ran out within this chunk: members after the last one served were not reached.
                reached = receive[len(codes) - 1] if codes else 0
                kept_out = [customer_id for customer_id in kept_out if customer_id < reached]
            holdouts_record(campaign=campaign, customer_ids=kept_out, ref=ref, now=now)
            kept_out_total += len(kept_out)
            if not codes:
                if receive:
                    break
                continue
            pairs = list(zip(receive, codes, strict=False))
            for customer_id, code in pairs:
                code.customer_id = customer_id
                code.published_at = now
                code.publication_ref = ref[:120]
            Code.objects.bulk_update([code for _, code in pairs], ["customer", "published_at", "publication_ref"])
            if announce:
                events = DomainEvent.objects.bulk_create(
                    [
                        DomainEvent(
                            name="voucher.published",
                            customer_id=customer_id,
                            payload={"code": code.code, "campaign_id": campaign.pk, "campaign": campaign.name},
                            cause=ref[:64],
                        )
                        for customer_id, code in pairs
                    ]
                )
                transaction.on_commit(partial(domain_events_dispatch_ids, [event.pk for event in events]), robust=True)
            published += len(pairs)
            pool_check(campaign=campaign)
            if len(codes) < len(receive):
                break
    left = waiting
    if campaign.holdout_percent:
        left = left.exclude(customer_id__in=CampaignHoldout.objects.filter(campaign=campaign).values("customer_id"))
    return SegmentPublication(published=published, without_code=left.count(), held_out=kept_out_total)


# --- The low-pool alert -------------------------------------------------------------------------------------


def pool_check(*, campaign: Campaign, now: datetime | None = None) -> bool:
    """
    After a publication: when the free codes fall below the campaign's threshold, raise `campaign.codes_low`
    once and e-mail the owner (after commit). Returns True when it fired now. Call inside the publication's
    transaction. A bounded count: at most `threshold` rows are looked at.
    """
    threshold = campaign.low_pool_threshold
    if not threshold or campaign.low_pool_alerted_at is not None:
        return False
    if not Code.objects.filter(campaign=campaign, max_uses__isnull=False).exists():
        return False  # a generic code (unlimited) is not a pool
    left = free_codes(campaign).order_by()[:threshold].count()
    if left >= threshold:
        return False
    now = now or timezone.now()
    marked = Campaign.objects.filter(pk=campaign.pk, low_pool_alerted_at__isnull=True).update(low_pool_alerted_at=now)
    campaign.low_pool_alerted_at = now
    if not marked:
        return False  # another publication raised it meanwhile
    domain_event_emit(
        signal=signals.codes_low,
        name="campaign.codes_low",
        customer=None,
        payload={"campaign_id": campaign.pk, "campaign": campaign.name, "free": left, "threshold": threshold},
        cause=f"codes_low:{campaign.pk}",
        sender=Campaign,
        campaign=campaign,
    )
    owner_notify(
        campaign=campaign,
        subject=f"Codes running low: {campaign.name}",
        body=f"The campaign “{campaign.name}” has {left} free code(s) left (alert below {threshold}). "
        "Generate or import more codes before the pool is empty.",
    )
    return True


def pool_rearm(*, campaign: Campaign) -> None:
    """Codes were added: the low-pool alert may fire again the next time the pool runs low."""
    Campaign.objects.filter(pk=campaign.pk).update(low_pool_alerted_at=None)
    campaign.low_pool_alerted_at = None


def owner_notify(*, campaign: Campaign, subject: str, body: str) -> None:
    """E-mail the campaign's owner after commit (a task: slow I/O never holds the writing transaction)."""
    if campaign.owner_id:
        enqueue_on_commit("apps.campaigns.tasks.campaign_owner_email_task", campaign.pk, subject, body)
