"""Small, defensive readers of untrusted JSON values (webhook bodies): a wrong type reads as "not given"."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_datetime

MAX_TAGS = 250
MAX_TAG_LENGTH = 100


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any, *, limit: int = 1000) -> list[dict[str, Any]]:
    return [item for item in value[:limit] if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: Any, *, limit: int = 255) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return html.unescape(str(value)).strip()[:limit]


def remote_id(value: Any) -> str:
    """A platform id (integer or string) as text; "" when missing or implausible."""
    if isinstance(value, bool) or value is None:
        return ""
    as_text = str(value).strip()
    return as_text if 0 < len(as_text) <= 64 and as_text.isprintable() else ""


def money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or abs(amount) >= Decimal("1e12"):
        return None
    return amount.quantize(Decimal("0.01"))


def integer(value: Any, *, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def moment(value: Any, *, naive_is_utc: bool = True) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None and naive_is_utc:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def email(value: Any) -> str:
    candidate = text(value, limit=254).lower()
    if not candidate:
        return ""
    try:
        validate_email(candidate)
    except ValidationError:
        return ""
    return candidate


def country(value: Any) -> str:
    code = text(value, limit=3).upper()
    return code if len(code) == 2 and code.isalpha() else ""


def currency(value: Any) -> str:
    code = text(value, limit=4).upper()
    return code if len(code) == 3 and code.isalpha() else ""


def tag_list(value: Any) -> list[str]:
    """Shopify's "a, b, c" (or a list) as names, bounded in number and length."""
    raw = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    names = [text(name, limit=MAX_TAG_LENGTH + 1) for name in raw[: MAX_TAGS * 2]]
    return [name for name in names if name and len(name) <= MAX_TAG_LENGTH][:MAX_TAGS]
