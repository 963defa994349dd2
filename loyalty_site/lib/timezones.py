"""
IANA time zone names (the tz database shipped by `tzdata`/zoneinfo): is a name known, and how the database
spells it. A customer's time zone and the sending policy's default are stored in that spelling.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError

MAX_LENGTH = 64
UNKNOWN = "Unknown time zone {value!r}: use an IANA name such as Europe/Paris or America/New_York."


# Files of the system's zoneinfo directory that are no place's zone.
NOT_ZONES = frozenset({"localtime", "factory", "posixrules"})


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    # Read once per process: listing the database walks the tzdata package.
    return {name.lower(): name for name in available_timezones() if name.lower() not in NOT_ZONES}


def time_zone_canonical(value: object) -> str | None:
    """The database's spelling of an IANA name ("europe/paris" → "Europe/Paris"); None when unknown."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_LENGTH:
        return None
    return _names().get(value.lower())


def validate_time_zone(value: str) -> None:
    """Django validator: blank passes (the field decides whether blank is allowed), unknown names do not."""
    if value and time_zone_canonical(value) is None:
        raise ValidationError(UNKNOWN.format(value=value[:MAX_LENGTH]), code="invalid_time_zone")
