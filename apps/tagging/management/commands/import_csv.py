"""
Import historical customers or orders from CSV (formats in the README, "CSV import").

Every row is validated first with the API's own serializers; bad rows are reported with their line
number and reason and skipped, the good ones are written through the services in batches (one
transaction per batch) with progress output. Re-running the same file is safe: customers are upserted
by `external_id`, orders with an `external_id` already stored are left alone.

It lives in the tagging app because a customers file may carry tags (tagging depends on customers).
"""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.customers import services as customer_services
from apps.customers.api.ingest import order_ingest
from apps.customers.api.serializers import CustomerInputSerializer, ExchangeRateSerializer, OrderCreateSerializer
from apps.customers.currency import exchange_rate_set
from loyalty_site.lib.api.errors import flatten_errors
from loyalty_site.lib.money import CurrencyError, currency_code, shop_currency

from ... import services as tag_services
from ...choices import TagSource

CUSTOMER_COLUMNS = [
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "preferred_currency",
    "state",
    "birthday",
    "accepts_marketing",
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
TRUE = {"1", "true", "yes", "y"}
FALSE = {"0", "false", "no", "n"}


@dataclass
class Rejection:
    line: int
    messages: list[str] = field(default_factory=list)


def _error_messages(errors: Any, *, rename: dict[str, str] | None = None) -> list[str]:
    out = []
    for error in flatten_errors(errors):
        path = (rename or {}).get(error["path"], error["path"])
        out.append(f"{path}: {error['message']}" if path else error["message"])
    return out


def _django_detail(error: ValidationError) -> Any:
    if hasattr(error, "error_dict"):
        return {key: [m for e in errors for m in e.messages] for key, errors in error.error_dict.items()}
    return error.messages


class Command(BaseCommand):
    help = (
        "Import customers, orders or exchange rates from a CSV file "
        "(validates every row, imports the good ones in batches)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["customers", "orders", "exchange_rates"])
        parser.add_argument("file", type=Path)
        parser.add_argument("--batch-size", type=int, default=500, help="Rows (customers) or orders per transaction")
        parser.add_argument("--dry-run", action="store_true", help="Only validate and report")

    def handle(self, *args, kind: str, file: Path, batch_size: int, dry_run: bool, **options) -> None:
        if not file.exists():
            raise CommandError(f"No such file: {file}")
        self.source_ref = f"import:{file.name}"[:64]
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = COLUMNS[kind]
            header = [name.strip() for name in reader.fieldnames or []]
            unknown = sorted(set(header) - set(columns))
            missing = [name for name in REQUIRED[kind] if name not in header]
            if unknown or missing:
                raise CommandError(
                    f"Bad header in {file}: "
                    + "; ".join(
                        ([f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
                        + ([f"missing column(s) {', '.join(missing)}"] if missing else [])
                    )
                    + f". Expected columns: {', '.join(columns)}."
                )
            reader.fieldnames = header
            rows = list(self._rows(reader))
        if kind == "customers":
            valid, rejected = self._validate_customers(rows)
            imported = 0 if dry_run else self._import_customers(valid, batch_size)
            unit = "customers"
        elif kind == "exchange_rates":
            valid, rejected = self._validate_rates(rows)
            imported = 0 if dry_run else self._import_rates(valid, batch_size)
            unit = "exchange rates"
        else:
            valid, rejected = self._validate_orders(rows)
            imported = 0 if dry_run else self._import_orders(valid, batch_size, rejected)
            unit = "orders"
        for rejection in sorted(rejected, key=lambda r: r.line):
            self.stderr.write(f"line {rejection.line}: " + "; ".join(rejection.messages))
        verb = "valid (dry run, nothing written)" if dry_run else "imported"
        self.stdout.write(f"{unit}: {len(valid) if dry_run else imported} {verb}, {len(rejected)} bad row(s) skipped.")
        if rejected:
            raise CommandError(f"{len(rejected)} bad row(s) were not imported; see the lines above.")

    @staticmethod
    def _rows(reader: csv.DictReader) -> Iterator[tuple[int, dict[str, str]]]:
        for row in reader:
            clean = {key: (value or "").strip() for key, value in row.items() if key is not None}
            if any(clean.values()):
                yield reader.line_num, clean

    # --- Customers -------------------------------------------------------------------------------

    def _validate_customers(self, rows: list[tuple[int, dict[str, str]]]) -> tuple[list, list[Rejection]]:
        valid: list = []
        rejected: list[Rejection] = []
        seen: dict[str, int] = {}  # external_id -> line
        for line, row in rows:
            messages: list[str] = []
            data: dict[str, Any] = {key: value for key, value in row.items() if value != "" and key != "tags"}
            if "accepts_marketing" in data:
                flag = data["accepts_marketing"].lower()
                if flag not in TRUE | FALSE:
                    messages.append("accepts_marketing: use true/false, yes/no or 1/0.")
                data["accepts_marketing"] = flag in TRUE
            if "attributes" in data:
                try:
                    data["attributes"] = json.loads(data["attributes"])
                except ValueError:
                    messages.append("attributes: not valid JSON.")
                    data.pop("attributes")
            tags = [name for name in row.get("tags", "").split(";") if name.strip()]
            try:
                tags = tag_services.tag_names_clean(tags)
            except ValidationError as error:
                messages.extend(_error_messages(_django_detail(error)))
            serializer = CustomerInputSerializer(data=data)
            if not serializer.is_valid():
                messages.extend(_error_messages(serializer.errors))
            external_id = row.get("external_id", "")
            if not external_id:
                messages.append("external_id: required.")
            elif external_id in seen:
                messages.append(f"external_id: {external_id!r} already on line {seen[external_id]}.")
            if messages:
                rejected.append(Rejection(line, messages))
                continue
            seen[external_id] = line
            fields = dict(serializer.validated_data)
            fields.pop("external_id", None)
            valid.append((external_id, fields, tags))
        return valid, rejected

    def _import_customers(self, valid: list, batch_size: int) -> int:
        done = 0
        for start in range(0, len(valid), batch_size):
            with transaction.atomic():
                for external_id, fields, tags in valid[start : start + batch_size]:
                    customer, _ = customer_services.customer_upsert(
                        external_id=external_id, cause=self.source_ref, **fields
                    )
                    if tags:
                        tag_services.tags_add(
                            customer=customer, names=tags, source=TagSource.IMPORT, source_ref=self.source_ref
                        )
                    done += 1
            self.stdout.write(f"customers: {done}/{len(valid)}")
        return done

    # --- Exchange rates (import them before orders in other currencies) ---------------------------

    def _validate_rates(self, rows: list[tuple[int, dict[str, str]]]) -> tuple[list, list[Rejection]]:
        valid: list = []
        rejected: list[Rejection] = []
        seen: dict[tuple[str, date], int] = {}  # (currency, day) -> line
        for line, row in rows:
            serializer = ExchangeRateSerializer(data={key: value for key, value in row.items() if value != ""})
            if not serializer.is_valid():
                rejected.append(Rejection(line, _error_messages(serializer.errors)))
                continue
            try:
                code = currency_code(serializer.validated_data["currency"])
            except CurrencyError as error:
                rejected.append(Rejection(line, [f"currency: {error.message}"]))
                continue
            if code == shop_currency():
                rejected.append(Rejection(line, [f"currency: {code} is the shop currency: its rate is always 1."]))
                continue
            key = (code, serializer.validated_data["day"])
            if key in seen:
                rejected.append(Rejection(line, [f"day: {key[0]} on {key[1]} already on line {seen[key]}."]))
                continue
            seen[key] = line
            valid.append((line, serializer.validated_data))
        return valid, rejected

    def _import_rates(self, valid: list, batch_size: int) -> int:
        done = 0
        for start in range(0, len(valid), batch_size):
            with transaction.atomic():
                for _line, data in valid[start : start + batch_size]:
                    exchange_rate_set(**{**data, "source": data.get("source") or self.source_ref})
                    done += 1
            self.stdout.write(f"exchange rates: {done}/{len(valid)}")
        return done

    # --- Orders ----------------------------------------------------------------------------------

    def _validate_orders(self, rows: list[tuple[int, dict[str, str]]]) -> tuple[list, list[Rejection]]:
        groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
        rejected: list[Rejection] = []
        for line, row in rows:
            if not row.get("order_external_id"):
                rejected.append(Rejection(line, ["order_external_id: required."]))
                continue
            groups.setdefault(row["order_external_id"], []).append((line, row))
        valid = []
        for external_id, group in groups.items():
            first_line, first = group[0]
            conflicts = [
                Rejection(line, [f"{name}: differs from line {first_line} of the same order."])
                for line, row in group[1:]
                for name in ORDER_LEVEL
                if row.get(name, "") != first.get(name, "")
            ]
            if conflicts:
                rejected.extend(conflicts)
                rejected.append(Rejection(first_line, [f"order {external_id!r}: its rows disagree (see below)."]))
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
                        rejected.append(Rejection(group[index][0], _error_messages(item)))
            elif line_errors:
                errors["lines"] = line_errors
            if errors:
                rejected.append(Rejection(first_line, _error_messages(errors)))
        return valid, rejected

    def _import_orders(self, valid: list, batch_size: int, rejected: list[Rejection]) -> int:
        created = existing = 0
        for start in range(0, len(valid), batch_size):
            with transaction.atomic():
                for line, serializer in valid[start : start + batch_size]:
                    try:
                        _order, was_created = order_ingest(
                            data=serializer.validated_data,
                            customer_ref=serializer.customer_kwargs(),
                            cause=self.source_ref,
                        )
                    except ValidationError as error:  # a business rule (e.g. negative total): only this order
                        rejected.append(Rejection(line, _error_messages(_django_detail(error))))
                        continue
                    created += was_created
                    existing += not was_created
            self.stdout.write(f"orders: {created + existing}/{len(valid)} ({existing} already present)")
        return created
