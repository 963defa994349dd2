"""
The CSV formats (columns per kind), the row validation and the batched writes, shared by the `import_csv`
command and the console's background import.

Every row is validated first with the API's own serializers; a bad row is rejected with its line number and,
per problem, the column and the reason; the good ones are written through the services in batches (one
transaction per batch). Re-running the same file is safe: customers are upserted by `external_id`, orders
with an `external_id` already stored are left alone.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.customers import services as customer_services
from apps.customers.api.ingest import order_ingest
from apps.customers.api.serializers import CustomerInputSerializer, ExchangeRateSerializer, OrderCreateSerializer
from apps.customers.consent import services as consent
from apps.customers.consent.api.serializers import SOURCE_PATTERN
from apps.customers.currency import exchange_rate_set
from loyalty_site.lib.api.errors import flatten_errors
from loyalty_site.lib.money import CurrencyError, currency_code, shop_currency

from .. import services as tag_services
from ..choices import TagSource

CUSTOMER_COLUMNS = [
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "time_zone",
    "preferred_currency",
    "state",
    "birthday",
    "accepts_marketing",
    "sms_marketing",
    "consent_source",
    "attributes",
    "tags",
]
ORDER_COLUMNS = [
    "order_external_id",
    "customer_external_id",
    "currency",
    "placed_at",
    "channel",
    "store_code",
    "shipping_country",
    "discount_total",
    "shipping_total",
    "tax_total",
    "total",
    "exchange_rate",
    "total_shop",
    "product_external_id",
    "title",
    "quantity",
    "unit_price",
]
LINE_COLUMNS = ["product_external_id", "title", "quantity", "unit_price"]
ORDER_LEVEL = [name for name in ORDER_COLUMNS if name not in LINE_COLUMNS]
RATE_COLUMNS = ["currency", "day", "rate", "source"]
REQUIRED = {
    "customers": ["external_id"],
    "orders": ["order_external_id", "customer_external_id", "currency"],
    "exchange_rates": ["currency", "day", "rate"],
}
COLUMNS = {"customers": CUSTOMER_COLUMNS, "orders": ORDER_COLUMNS, "exchange_rates": RATE_COLUMNS}
UNITS = {"customers": "customers", "orders": "orders", "exchange_rates": "exchange rates"}
TRUE = {"1", "true", "yes", "y"}
FALSE = {"0", "false", "no", "n"}

# Header names people export from other tools, and the column they mean (after lower-casing and turning
# spaces, dashes and dots into underscores). Anything else is matched by its normalised name.
SYNONYMS: dict[str, dict[str, str]] = {
    "customers": {
        "id": "external_id",
        "customer_id": "external_id",
        "external_id": "external_id",
        "e_mail": "email",
        "email_address": "email",
        "mail": "email",
        "phone_number": "phone",
        "mobile": "phone",
        "firstname": "first_name",
        "given_name": "first_name",
        "lastname": "last_name",
        "surname": "last_name",
        "family_name": "last_name",
        "country_code": "country",
        "timezone": "time_zone",
        "tz": "time_zone",
        "currency": "preferred_currency",
        "date_of_birth": "birthday",
        "dob": "birthday",
        "birth_date": "birthday",
        "marketing": "accepts_marketing",
        "newsletter": "accepts_marketing",
        "email_marketing": "accepts_marketing",
        "sms_consent": "sms_marketing",
        "sms_opt_in": "sms_marketing",
        "tag": "tags",
    },
    "orders": {
        "order_id": "order_external_id",
        "order": "order_external_id",
        "order_number": "order_external_id",
        "customer_id": "customer_external_id",
        "customer": "customer_external_id",
        "date": "placed_at",
        "created_at": "placed_at",
        "order_date": "placed_at",
        "product_id": "product_external_id",
        "sku": "product_external_id",
        "product": "title",
        "product_title": "title",
        "qty": "quantity",
        "price": "unit_price",
    },
    "exchange_rates": {"date": "day", "code": "currency", "exchange_rate": "rate"},
}

_NORMALISE = re.compile(r"[\s\-.]+")


@dataclass
class Rejection:
    """A rejected row: its line in the file and, per problem, the column ("" = the whole row) and reason."""

    line: int
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def messages(self) -> list[str]:
        return [f"{column}: {message}" if column else message for column, message in self.problems]


@dataclass
class Parsed:
    """A file read with its header mapped: the rows (line, {column: value}) or the header's problems."""

    rows: list[tuple[int, dict[str, str]]]
    header_problems: list[str]


def header_problems(kind: str, columns: Iterable[str]) -> list[str]:
    """What is wrong with a (mapped) header: unknown columns, missing required ones. Empty when it is fine."""
    known = COLUMNS[kind]
    present = [name for name in columns if name]
    unknown = sorted(set(present) - set(known))
    missing = [name for name in REQUIRED[kind] if name not in present]
    doubled = sorted({name for name in present if present.count(name) > 1})
    return (
        ([f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
        + ([f"missing column(s) {', '.join(missing)}"] if missing else [])
        + ([f"column(s) given twice: {', '.join(doubled)}"] if doubled else [])
    )


def mapping_guess(kind: str, header: list[str]) -> dict[str, str]:
    """For each column of the file, the column of `kind` it most likely is ("" = not imported)."""
    known = set(COLUMNS[kind])
    synonyms = SYNONYMS[kind]
    guessed: dict[str, str] = {}
    taken: set[str] = set()
    for name in header:
        key = _NORMALISE.sub("_", name.strip().lower()).strip("_")
        target = key if key in known else synonyms.get(key, "")
        if target and target not in taken:
            guessed[name] = target
            taken.add(target)
        else:
            guessed[name] = ""
    return guessed


def csv_read(text: str, *, kind: str, mapping: dict[str, str] | None = None, max_rows: int | None = None) -> Parsed:
    """
    Read CSV text: its header is mapped by `mapping` (file column -> column of `kind`; "" drops it; None means
    the header already uses our names) and checked; empty rows are skipped. Values are stripped.
    """
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    mapped = [(mapping or {}).get(name, "") if mapping is not None else name for name in header]
    problems = header_problems(kind, mapped)
    if problems:
        return Parsed([], problems)
    rows: list[tuple[int, dict[str, str]]] = []
    for values in reader:
        row = {column: value.strip() for column, value in zip(mapped, values, strict=False) if column}
        if any(row.values()):
            rows.append((reader.line_num, row))
            if max_rows is not None and len(rows) > max_rows:
                return Parsed([], [f"more than {max_rows} rows: split the file"])
    return Parsed(rows, [])


def _problems(errors: Any) -> list[tuple[str, str]]:
    return [(error["path"], error["message"]) for error in flatten_errors(errors)]


def _django_detail(error: ValidationError) -> Any:
    if hasattr(error, "error_dict"):
        return {key: [m for e in errors for m in e.messages] for key, errors in error.error_dict.items()}
    return error.messages


Progress = Callable[[int, int], None]  # (done, total) after each batch


def _no_progress(done: int, total: int) -> None:
    return None


# --- Customers -----------------------------------------------------------------------------------


def customers_validate(rows: list[tuple[int, dict[str, str]]]) -> tuple[list, list[Rejection]]:
    valid: list = []
    rejected: list[Rejection] = []
    seen: dict[str, int] = {}  # external_id -> line
    for line, row in rows:
        problems: list[tuple[str, str]] = []
        data: dict[str, Any] = {key: value for key, value in row.items() if value != "" and key != "tags"}
        for column in ("accepts_marketing", "sms_marketing"):
            if column in data:
                flag = data[column].lower()
                if flag not in TRUE | FALSE:
                    problems.append((column, "use true/false, yes/no or 1/0."))
                data[column] = flag in TRUE
        # Consent columns are recorded by the consent service with their source (default "csv"): e-mail
        # marketing (accepts_marketing, through the customer services) and SMS marketing (sms_marketing), yes/no.
        flags = {"sms": data.pop("sms_marketing")} if "sms_marketing" in data else {}
        consent_source = data.pop("consent_source", "csv")
        if not SOURCE_PATTERN.match(consent_source):
            problems.append(("consent_source", "a lower-case word, optionally followed by ':' and a reference."))
        if "attributes" in data:
            try:
                data["attributes"] = json.loads(data["attributes"])
            except ValueError:
                problems.append(("attributes", "not valid JSON."))
                data.pop("attributes")
        tags = [name for name in row.get("tags", "").split(";") if name.strip()]
        try:
            tags = tag_services.tag_names_clean(tags)
        except ValidationError as error:
            problems.extend(("tags", message) for _path, message in _problems(_django_detail(error)))
        serializer = CustomerInputSerializer(data=data)
        if not serializer.is_valid():
            problems.extend(_problems(serializer.errors))
        external_id = row.get("external_id", "")
        if not external_id:
            problems.append(("external_id", "required."))
        elif external_id in seen:
            problems.append(("external_id", f"{external_id!r} already on line {seen[external_id]}."))
        if problems:
            rejected.append(Rejection(line, problems))
            continue
        seen[external_id] = line
        fields = dict(serializer.validated_data)
        fields.pop("external_id", None)
        valid.append((external_id, fields, tags, flags, consent_source))
    return valid, rejected


def customers_write(valid: list, *, batch_size: int, source_ref: str, progress: Progress = _no_progress) -> int:
    done = 0
    for start in range(0, len(valid), batch_size):
        with transaction.atomic():
            for external_id, fields, tags, flags, consent_source in valid[start : start + batch_size]:
                customer, _ = customer_services.customer_upsert(
                    external_id=external_id, cause=source_ref, consent_source=consent_source, **fields
                )
                for channel, wanted in flags.items():
                    consent.consent_flag_set(
                        customer=customer, channel=channel, wanted=wanted, source=consent_source, cause=source_ref
                    )
                if tags:
                    tag_services.tags_add(customer=customer, names=tags, source=TagSource.IMPORT, source_ref=source_ref)
                done += 1
        progress(done, len(valid))
    return done


# --- Exchange rates (import them before orders in other currencies) -------------------------------


def rates_validate(rows: list[tuple[int, dict[str, str]]]) -> tuple[list, list[Rejection]]:
    valid: list = []
    rejected: list[Rejection] = []
    seen: dict[tuple[str, date], int] = {}  # (currency, day) -> line
    for line, row in rows:
        serializer = ExchangeRateSerializer(data={key: value for key, value in row.items() if value != ""})
        if not serializer.is_valid():
            rejected.append(Rejection(line, _problems(serializer.errors)))
            continue
        try:
            code = currency_code(serializer.validated_data["currency"])
        except CurrencyError as error:
            rejected.append(Rejection(line, [("currency", error.message)]))
            continue
        if code == shop_currency():
            rejected.append(Rejection(line, [("currency", f"{code} is the shop currency: its rate is always 1.")]))
            continue
        key = (code, serializer.validated_data["day"])
        if key in seen:
            rejected.append(Rejection(line, [("day", f"{key[0]} on {key[1]} already on line {seen[key]}.")]))
            continue
        seen[key] = line
        valid.append((line, serializer.validated_data))
    return valid, rejected


def rates_write(valid: list, *, batch_size: int, source_ref: str, progress: Progress = _no_progress) -> int:
    done = 0
    for start in range(0, len(valid), batch_size):
        with transaction.atomic():
            for _line, data in valid[start : start + batch_size]:
                exchange_rate_set(**{**data, "source": data.get("source") or source_ref})
                done += 1
        progress(done, len(valid))
    return done


# --- Orders ----------------------------------------------------------------------------------------


def orders_validate(rows: list[tuple[int, dict[str, str]]]) -> tuple[list, list[Rejection]]:
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    rejected: list[Rejection] = []
    for line, row in rows:
        if not row.get("order_external_id"):
            rejected.append(Rejection(line, [("order_external_id", "required.")]))
            continue
        groups.setdefault(row["order_external_id"], []).append((line, row))
    valid = []
    for external_id, group in groups.items():
        first_line, first = group[0]
        conflicts = [
            Rejection(line, [(name, f"differs from line {first_line} of the same order.")])
            for line, row in group[1:]
            for name in ORDER_LEVEL
            if row.get(name, "") != first.get(name, "")
        ]
        if conflicts:
            rejected.extend(conflicts)
            rejected.append(Rejection(first_line, [("", f"order {external_id!r}: its rows disagree (see below).")]))
            continue
        payload: dict[str, Any] = {
            "external_id": external_id,
            **{name: first[name] for name in ORDER_LEVEL[1:] if first.get(name)},
            "lines": [{name: row[name] for name in LINE_COLUMNS if row.get(name)} for _line, row in group],
        }
        serializer = OrderCreateSerializer(data=payload)
        if serializer.is_valid():
            valid.append((first_line, serializer))
            continue
        errors = serializer.errors
        line_errors = errors.pop("lines", None) if isinstance(errors, dict) else None
        # Per-line errors come as {index: errors} (or a list in older DRF): report them on that line.
        if isinstance(line_errors, list):
            line_errors = dict(enumerate(line_errors))
        if isinstance(line_errors, dict) and all(isinstance(key, int) for key in line_errors):
            for index, item in sorted(line_errors.items()):
                if item:
                    rejected.append(Rejection(group[index][0], _problems(item)))
        elif line_errors:
            errors["lines"] = line_errors
        if errors:
            rejected.append(Rejection(first_line, _problems(errors)))
    return valid, rejected


def orders_write(
    valid: list, rejected: list[Rejection], *, batch_size: int, source_ref: str, progress: Progress = _no_progress
) -> tuple[int, int]:
    """Write the valid orders; a business rule refusing one (e.g. a negative total) rejects only that order."""
    created = existing = 0
    for start in range(0, len(valid), batch_size):
        with transaction.atomic():
            for line, serializer in valid[start : start + batch_size]:
                try:
                    _order, was_created = order_ingest(
                        data=serializer.validated_data, customer_ref=serializer.customer_kwargs(), cause=source_ref
                    )
                except ValidationError as error:
                    rejected.append(Rejection(line, _problems(_django_detail(error))))
                    continue
                created += was_created
                existing += not was_created
        progress(created + existing, len(valid))
    return created, existing


@dataclass
class Outcome:
    """What an import did: how many were valid / written (and already present, for orders), and the rejections."""

    valid: int
    written: int
    existing: int
    rejected: list[Rejection]


def rows_import(
    kind: str,
    rows: list[tuple[int, dict[str, str]]],
    *,
    source_ref: str,
    batch_size: int = 500,
    dry_run: bool = False,
    progress: Progress = _no_progress,
) -> Outcome:
    """Validate every row, then (unless `dry_run`) write the good ones in batches, reporting progress."""
    existing = 0
    if kind == "customers":
        valid, rejected = customers_validate(rows)
        written = (
            0 if dry_run else customers_write(valid, batch_size=batch_size, source_ref=source_ref, progress=progress)
        )
    elif kind == "exchange_rates":
        valid, rejected = rates_validate(rows)
        written = 0 if dry_run else rates_write(valid, batch_size=batch_size, source_ref=source_ref, progress=progress)
    elif kind == "orders":
        valid, rejected = orders_validate(rows)
        written, existing = (
            (0, 0)
            if dry_run
            else orders_write(valid, rejected, batch_size=batch_size, source_ref=source_ref, progress=progress)
        )
    else:
        raise ValueError(f"unknown import kind {kind!r}")
    rejected.sort(key=lambda rejection: rejection.line)
    return Outcome(valid=len(valid), written=written, existing=existing, rejected=rejected)
