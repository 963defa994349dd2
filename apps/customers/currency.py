"""
Exchange rates and shop-currency amounts.

Every order, refund, cart and draft order keeps its own currency and amounts (what the customer saw)
and the same amounts in the shop currency (`settings.SHOP_CURRENCY`) with the rate used, stored on
the row. The rate is, in order of precedence:

1. 1 for the shop currency itself;
2. what the integrator sent with the record: the shop-currency total (`total_shop`, the rate is then
   `total_shop / total`) and/or `exchange_rate`;
3. otherwise the `ExchangeRate` table: the latest rate on or before the record's day (the local date
   of `placed_at` / creation in `settings.TIME_ZONE`).

No rate → the write is refused with a 400 naming `currency`; an amount is never summed unconverted.
"""

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from loyalty_site.lib.money import (
    CurrencyError,
    currency_code,
    no_rate_message,
    rate_clean,
    rate_implied,
    shop_currency,
    to_shop,
)

from .models import Cart, Customer, DraftOrder, ExchangeRate, Order

ONE = Decimal("1")


def record_day(at: datetime | None) -> date:
    """The day a record's rate is looked up for: its local date in the site's time zone."""
    return timezone.localdate(at or timezone.now())


def exchange_rate_lookup(*, currency: str, day: date) -> Decimal | None:
    """The latest table rate for `currency` on or before `day` (1 for the shop currency); None if none."""
    if currency == shop_currency():
        return ONE
    return (
        ExchangeRate.objects.filter(currency=currency, day__lte=day)
        .order_by("-day")
        .values_list("rate", flat=True)
        .first()
    )


@dataclass(frozen=True)
class Conversion:
    """The rate a record is converted with, and the shop-currency total when the integrator sent it."""

    currency: str
    shop_currency: str
    rate: Decimal
    total_shop: Decimal | None = None

    def shop(self, amount: Decimal) -> Decimal:
        return amount if self.rate == ONE and self.currency == self.shop_currency else to_shop(amount, rate=self.rate)


def _invalid(path: str, message: str) -> ValidationError:
    return ValidationError({path: message})


def conversion_for(
    *,
    currency: str,
    at: datetime | None,
    total: Decimal,
    exchange_rate: Any = None,
    total_shop: Any = None,
) -> Conversion:
    """
    How a record in `currency` dated `at` with this `total` converts to the shop currency. Raises a
    ValidationError naming `currency`, `exchange_rate` or `total_shop` when it cannot.
    """
    try:
        code = currency_code(currency)
    except CurrencyError as error:
        raise _invalid("currency", error.message) from None
    shop = shop_currency()
    rate = None
    if exchange_rate is not None and exchange_rate != "":
        try:
            rate = rate_clean(exchange_rate)
        except CurrencyError as error:
            raise _invalid("exchange_rate", error.message) from None
    shop_total = None
    if total_shop is not None and total_shop != "":
        shop_total = Decimal(str(total_shop)).quantize(Decimal("0.01"))
        if shop_total < 0:
            raise _invalid("total_shop", "The shop-currency total cannot be negative.")
    if code == shop:
        if rate is not None and rate != ONE:
            raise _invalid("exchange_rate", f"{code} is the shop currency: its rate is 1.")
        if shop_total is not None and shop_total != total:
            raise _invalid("total_shop", f"{code} is the shop currency: total_shop must equal total ({total}).")
        return Conversion(code, shop, ONE, total)
    if shop_total is not None:
        if total > 0:
            return Conversion(code, shop, rate if rate is not None else rate_implied(total, shop_total), shop_total)
        if shop_total != 0:
            raise _invalid("total_shop", "The total is 0, so the shop-currency total must be 0 too.")
    if rate is None:
        day = record_day(at)
        rate = exchange_rate_lookup(currency=code, day=day)
        if rate is None:
            raise _invalid("currency", no_rate_message(code, day))
    return Conversion(code, shop, rate, shop_total)


# --- Exchange-rate table ------------------------------------------------------------------------


@transaction.atomic
def exchange_rate_set(*, currency: str, day: date, rate: Any, source: str = "") -> tuple[ExchangeRate, bool]:
    """Store the rate of `currency` on `day` (replacing that day's rate). Returns (row, created)."""
    try:
        code = currency_code(currency)
        clean = rate_clean(rate, path="rate")
    except CurrencyError as error:
        raise _invalid(error.path, error.message) from None
    if code == shop_currency():
        raise _invalid("currency", f"{code} is the shop currency: its rate is always 1.")
    row, created = ExchangeRate.objects.update_or_create(
        currency=code, day=day, defaults={"rate": clean, "source": source[:64]}
    )
    return row, created


RATE_COLUMNS = ["currency", "day", "rate"]


def exchange_rates_parse_csv(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """
    Rows of a `currency,day,rate` CSV (a header row; `day` as YYYY-MM-DD). Returns (good rows,
    `line N: field: reason` messages for the bad ones).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in RATE_COLUMNS if name not in header]
    unknown = sorted(set(header) - set(RATE_COLUMNS) - {"source"})
    if missing or unknown:
        problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
        )
        return [], [f"line 1: {'; '.join(problems)}. Expected columns: currency, day, rate[, source]."]
    reader.fieldnames = header
    rows, errors = [], []
    for row in reader:
        clean = {key: (value or "").strip() for key, value in row.items() if key is not None}
        if not any(clean.values()):
            continue
        line = reader.line_num
        try:
            code = currency_code(clean.get("currency"))
        except CurrencyError as error:
            errors.append(f"line {line}: currency: {error.message}")
            continue
        try:
            day = date.fromisoformat(clean.get("day", ""))
        except ValueError:
            errors.append(f"line {line}: day: use YYYY-MM-DD.")
            continue
        try:
            rate = rate_clean(clean.get("rate"), path="rate")
        except CurrencyError as error:
            errors.append(f"line {line}: rate: {error.message}")
            continue
        if code == shop_currency():
            errors.append(f"line {line}: currency: {code} is the shop currency: its rate is always 1.")
            continue
        rows.append({"currency": code, "day": day, "rate": rate, "source": clean.get("source", "")})
    return rows, errors


# --- Filling shop amounts on rows written without them ------------------------------------------


def _fill_order(order: Order, rate: Decimal) -> None:
    conversion = Conversion(order.currency, shop_currency(), rate)
    order.shop_currency = conversion.shop_currency
    order.exchange_rate = rate
    for name in ("subtotal", "discount_total", "shipping_total", "tax_total", "total"):
        setattr(order, f"{name}_shop", conversion.shop(getattr(order, name)))
    refunded = refunded_shop = Decimal("0.00")
    for refund in order.refunds.order_by("created_at", "pk"):
        refund.amount_shop = refund_amount_shop(
            order, refund.amount, refunded_before=refunded, refunded_shop_before=refunded_shop
        )
        refund.save(update_fields=["amount_shop"])
        refunded += refund.amount
        refunded_shop += refund.amount_shop
    order.refunded_total_shop = refunded_shop
    order.save(
        update_fields=[
            "shop_currency",
            "exchange_rate",
            "subtotal_shop",
            "discount_total_shop",
            "shipping_total_shop",
            "tax_total_shop",
            "total_shop",
            "refunded_total_shop",
        ]
    )


def refund_amount_shop(
    order: Order, amount: Decimal, *, refunded_before: Decimal, refunded_shop_before: Decimal
) -> Decimal:
    """
    A refund in the shop currency, at the order's rate. The refund that completes the order takes
    exactly what is left of its total_shop, so a fully refunded order nets to 0.00 in the shop currency.
    """
    assert order.total_shop is not None and order.exchange_rate is not None
    left = order.total_shop - refunded_shop_before
    if refunded_before + amount >= order.total:
        return left
    converted = Conversion(order.currency, shop_currency(), order.exchange_rate).shop(amount)
    return max(min(converted, left), Decimal("0.00"))


def rows_missing_rates() -> dict[str, QuerySet]:
    """Rows whose shop-currency amounts are unknown (no rate when they were written or migrated)."""
    stale = ~Q(shop_currency=shop_currency())
    return {
        "orders": Order.objects.filter(Q(exchange_rate__isnull=True) | stale),
        "carts": Cart.objects.filter(Q(exchange_rate__isnull=True) | stale),
        "draft_orders": DraftOrder.objects.filter(Q(exchange_rate__isnull=True) | stale),
    }


@transaction.atomic
def shop_amounts_fill(*, order: Order | None = None, cart: Cart | None = None, draft: DraftOrder | None = None) -> bool:
    """
    Fill the shop-currency amounts of one row from the rate table (the latest rate on or before its
    day). Returns False when there is still no rate. An order's customer figures are recomputed.
    """
    from .services import customer_summary_recompute

    if order is not None:
        order = Order.objects.select_for_update().get(pk=order.pk)
        rate = exchange_rate_lookup(currency=order.currency, day=record_day(order.placed_at))
        if rate is None:
            return False
        _fill_order(order, rate)
        customer_summary_recompute(customer=Customer(pk=order.customer_id))
        return True
    row = cart or draft
    assert row is not None
    rate = exchange_rate_lookup(currency=row.currency, day=record_day(row.created_at))
    if rate is None:
        return False
    conversion = Conversion(row.currency, shop_currency(), rate)
    type(row).objects.filter(pk=row.pk).update(
        shop_currency=conversion.shop_currency, exchange_rate=rate, total_shop=conversion.shop(row.total)
    )
    return True
