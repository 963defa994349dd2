"""When a `wait` step ends."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.utils import timezone

from ..definitions import WAIT_UNITS


def wait_until(wait: dict[str, Any], now: datetime) -> datetime:
    """When a wait started at `now` ends: after a duration, or at the next HH:MM (local time) on the weekdays."""
    for unit, minutes in WAIT_UNITS.items():
        if unit in wait:
            return now + timedelta(minutes=int(wait[unit]) * minutes)
    hour, minute = (int(part) for part in wait["until_time"].split(":"))
    weekdays = set(wait.get("weekdays") or range(7))
    local = timezone.localtime(now)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        candidate = timezone.make_aware(datetime.combine(day, time(hour, minute)), local.tzinfo)
        if candidate > local and day.weekday() in weekdays:
            return candidate
    raise ValueError("no matching weekday")  # unreachable: weekdays is non-empty
