"""
History back-fill from a shop's own exports (Shopify admin → Customers → Export, Orders → Export, "CSV for
Excel, Numbers, or other spreadsheet programs"). Rows are read into the same neutral shapes as webhooks and
applied by the same code, so a back-fill and the webhooks that follow it meet on the same records: running a
file twice, or a file overlapping deliveries already received, changes nothing the second time.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from django.core.exceptions import ValidationError

from apps.customers.models import Customer
from loyalty_site.lib.errors import DomainError

from ..models import StoreConnection
from . import apply
from . import reading as r
from .shapes import CustomerShape, LineShape, OrderShape, RefundShape, Unusable

MAX_FIELD = 100_000
csv.field_size_limit(MAX_FIELD)


@dataclass
class Progress:
    done: int = 0
    created: int = 0
    existing: int = 0
    errors: list[str] = field(default_factory=list)


def _yes(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "1")


def _id(value: str) -> str:
    # Shopify prefixes ids with an apostrophe so that spreadsheets keep all their digits.
    return r.remote_id(value.strip().lstrip("'"))


def _moment(value: str) -> Any:
    # "2024-05-01 10:00:00 -0400" (orders export) → ISO 8601.
    text = value.strip()
    if len(text) >= 25 and text[10] == " " and text[19] == " ":
        text = f"{text[:10]}T{text[11:19]}{text[20:23]}:{text[23:25]}"
    return r.moment(text)


def customer_row(row: dict[str, str]) -> CustomerShape:
    remote = _id(row.get("Customer ID", ""))
    if not remote:
        raise Unusable("Customer ID is empty (export with a recent Shopify admin: it has the column)")
    consent = {
        "email": "granted" if _yes(row.get("Accepts Email Marketing", row.get("Accepts Marketing", ""))) else "none"
    }
    if "Accepts SMS Marketing" in row:
        consent["sms"] = "granted" if _yes(row["Accepts SMS Marketing"]) else "none"
    return CustomerShape(
        remote_id=remote,
        email=r.email(row.get("Email")),
        phone=r.text(row.get("Phone") or row.get("Default Address Phone"), limit=32),
        first_name=r.text(row.get("First Name"), limit=100),
        last_name=r.text(row.get("Last Name"), limit=100),
        country=r.country(row.get("Default Address Country Code") or row.get("Country Code")),
        tags=r.tag_list(row.get("Tags", "")),
        consent=consent,
    )


def _order_shape(connection: StoreConnection, rows: list[dict[str, str]]) -> OrderShape:
    head = rows[0]  # order-level columns are filled on the first line of each order only
    remote = _id(head.get("Id", "")) or r.text(head.get("Name"), limit=64)
    currency = r.currency(head.get("Currency"))
    total = r.money(head.get("Total"))
    if not remote or not currency or total is None:
        raise Unusable("Id/Name, Currency or Total is empty")
    email = r.email(head.get("Email"))
    lines = [
        LineShape(
            title=r.text(row.get("Lineitem name")) or "Item",
            quantity=r.integer(row.get("Lineitem quantity")),
            unit_price=r.money(row.get("Lineitem price")) or Decimal("0"),
            sku=r.text(row.get("Lineitem sku"), limit=64),
        )
        for row in rows
        if r.integer(row.get("Lineitem quantity")) >= 1
    ]
    known = (
        Customer.objects.filter(email=email, external_id__startswith=apply.external_id(connection, ""))
        .exclude(external_id__contains=":guest:")
        .values_list("external_id", flat=True)
        .first()
        if email
        else None
    )
    refunded = r.money(head.get("Refunded Amount")) or Decimal("0")
    return OrderShape(
        remote_id=remote,
        name=r.text(head.get("Name"), limit=64),
        currency=currency,
        lines=lines,
        total=total,
        customer=CustomerShape(remote_id=known.rsplit(":", 1)[1]) if known else None,
        email=email,
        discount_total=r.money(head.get("Discount Amount")) or Decimal("0"),
        shipping_total=r.money(head.get("Shipping")) or Decimal("0"),
        tax_total=r.money(head.get("Taxes")) or Decimal("0"),
        channel="pos" if head.get("Source", "").strip() == "pos" else "online",
        shipping_country=r.country(head.get("Shipping Country")),
        discount_codes=[code for code in [r.text(head.get("Discount Code"), limit=64)] if code],
        placed_at=_moment(head.get("Created at", "")),
        cancelled_at=_moment(head.get("Cancelled at", "")),
        refunds=(
            [RefundShape(remote_id=f"{remote}:export-refund", order_remote_id=remote, amount=refunded, reason="export")]
            if refunded > 0
            else []
        ),
    )


def _grouped(rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """Consecutive rows of one order (same Name) together, with the line number of the first."""
    current: list[dict[str, str]] = []
    start = 0
    for line, row in rows:
        if current and row.get("Name") != current[0].get("Name"):
            yield start, current
            current = []
        if not current:
            start = line
        current.append(row)
    if current:
        yield start, current


def _rows(file: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(file)
    for row in reader:
        yield reader.line_num, {(key or "").strip().lstrip("\ufeff"): (value or "") for key, value in row.items()}


def backfill(
    *,
    connection: StoreConnection,
    kind: str,
    file: TextIO,
    total: int = 0,
    report: Callable[[Progress, int], None] | None = None,
    every: int = 500,
) -> Progress:
    """Import a customers or orders export for this shop; `report(progress, total)` every `every` records."""
    progress = Progress()
    units: Iterator[tuple[int, Any]] = _rows(file) if kind == "customers" else _grouped(_rows(file))
    for line, unit in units:
        try:
            if kind == "customers":
                _, outcome = apply.customer_apply(connection, customer_row(unit))
                created = bool(outcome.get("customer_created"))
            else:
                outcome = apply.order_apply(connection, _order_shape(connection, unit))
                created = bool(outcome.get("order_created"))
        except (Unusable, ValidationError, DomainError) as error:
            message = (
                "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
                if isinstance(error, ValidationError) and hasattr(error, "error_dict")
                else str(getattr(error, "message", error))
            )
            progress.errors.append(f"line {line}: {message}")
        else:
            progress.created += created
            progress.existing += not created
        progress.done += 1
        if report is not None and progress.done % every == 0:
            report(progress, total)
    if report is not None and progress.done % every:
        report(progress, total)
    return progress
