"""Coercion of condition values, shared by validation and both evaluators so they cannot disagree."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

RELATIVE_KEYS = ("days_ago", "days_from_now")
MAX_RELATIVE_DAYS = 36500
NUMERIC_TYPES = ("number", "money", "integer")


def to_decimal(value: Any) -> Decimal | None:
    """A number as Decimal; None for anything that is not a finite number (booleans included)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, Decimal)):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def to_decimal_valid(value: Any) -> Decimal:
    """`to_decimal` of a value that validation accepted as a number (anything else is a TypeError)."""
    number = to_decimal(value)
    if number is None:
        raise TypeError(f"{value!r} is not a number")
    return number


def number_error(value: Any, field_type: str) -> str | None:
    # Numeric strings are accepted ("19.99" keeps money exact through JSON and form inputs).
    number = to_decimal(value)
    if number is None:
        return f"{value!r} is not a number"
    if abs(number) >= Decimal("1e15"):
        return f"{value!r} is too large"
    if field_type == "integer" and number != number.to_integral_value():
        return f"{value!r} is not a whole number"
    if field_type == "money" and number != number.quantize(Decimal("0.01")):
        return f"{value!r} has more than two decimals"
    return None


def relative_error(value: dict) -> str | None:
    keys = set(value)
    if len(keys) != 1 or not keys <= set(RELATIVE_KEYS):
        return 'a relative date is {"days_ago": N} or {"days_from_now": N}'
    days = next(iter(value.values()))
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_RELATIVE_DAYS:
        return f"days must be a whole number between 0 and {MAX_RELATIVE_DAYS}"
    return None


def date_error(value: Any, field_type: str) -> str | None:
    if isinstance(value, dict):
        return relative_error(value)
    if isinstance(value, str):
        try:
            if parse_date(value) is not None:
                return None
            if parse_datetime(value) is not None:
                return None
        except ValueError:
            pass
    return f"{value!r} is not an ISO date, an ISO date-time or a relative date"


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def resolve_instant(value: Any, *, now: datetime) -> datetime:
    """A datetime field's comparison value: an instant (a date-only value is that day's local midnight)."""
    if isinstance(value, dict):
        days = value.get("days_ago")
        return now - timedelta(days=days) if days is not None else now + timedelta(days=value["days_from_now"])
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, date):
        return local_midnight(value)
    parsed = parse_datetime(value) if "T" in value or " " in value else None
    if parsed is not None:
        return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
    day = parse_date(value)
    if day is None:
        raise TypeError(f"{value!r} is not a date")  # (validation refuses it before)
    return local_midnight(day)


def resolve_day(value: Any, *, now: datetime) -> date:
    """A date's comparison value, or the local day of a datetime's comparison value (for eq / ne)."""
    if isinstance(value, dict):
        today = timezone.localtime(now).date()
        days = value.get("days_ago")
        return today - timedelta(days=days) if days is not None else today + timedelta(days=value["days_from_now"])
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, date):
        return value
    day = parse_date(value)
    if day is not None:
        return day
    return resolve_day(resolve_instant(value, now=now), now=now)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, as instants."""
    return local_midnight(day), local_midnight(day + timedelta(days=1))


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
