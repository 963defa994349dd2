"""Reading a report's date range from a query string (pages and API alike); bad input names its field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.automations.models import Workflow
from apps.campaigns.models import Campaign
from loyalty_site.lib.errors import DomainError

from .selectors import MAX_RANGE_DAYS, Period


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = (params.get(name) or "").strip()[:32]
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise DomainError(f"{name}: a date as YYYY-MM-DD.", path=name, code="invalid") from None
    if not 1900 <= value.year <= 2999:
        raise DomainError(f"{name}: a year between 1900 and 2999.", path=name, code="invalid")
    return value


def period_from(params: Mapping[str, str], *, today: date | None = None) -> Period:
    """`start`/`end` (inclusive, local days); the last 30 days by default."""
    today = today or timezone.localdate()
    end = _date(params, "end") or today
    start = _date(params, "start") or end - timedelta(days=29)
    if start > end:
        raise DomainError("start: must be on or before end.", path="start", code="invalid")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise DomainError(f"start: a range of at most {MAX_RANGE_DAYS} days.", path="start", code="invalid")
    return Period(start, end)


def window_from(params: Mapping[str, str], *, default: int = 7) -> int:
    """The attribution window in days (1 to 90)."""
    text = (params.get("window") or "").strip()[:8]
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 90:
        raise DomainError("window: a whole number of days from 1 to 90.", path="window", code="invalid")
    return int(text)


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def day_start(day: date) -> datetime:
    """The first instant of a local day (TIME_ZONE), as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def _chosen(params: Mapping[str, str], name: str, model: type[Workflow] | type[Campaign]) -> Any:
    """The row chosen by `?<name>=<id>` (None when not given); an unknown or malformed id names the field."""
    text = (params.get(name) or "").strip()[:20]
    if not text:
        return None
    row = model.objects.filter(pk=int(text)).first() if text.isdigit() and len(text) < 19 else None
    if row is None:
        raise DomainError(f"{name}: no {name} with this id.", path=name, code="invalid")
    return row


@dataclass
class LiftQuery:
    """
    What the workflows and campaigns reports read from a query string beside the date range: the workflow or
    campaign chosen (`?workflow=` / `?campaign=`, None for all) and the attribution window (`?window=`, days).
    """

    subject: Any
    window: int
    problems: list[DomainError] = field(default_factory=list)

    def raise_first(self) -> None:
        """The API's way: the first problem as a DomainError (a JSON 400 naming its field)."""
        if self.problems:
            raise self.problems[0]


def lift_query_from(params: Mapping[str, str], *, subject: str) -> LiftQuery:
    """
    The one parser of the workflows and campaigns reports' parameters (pages and API): `subject` is "workflow"
    or "campaign". Every problem is collected (a page shows them all), none raised.
    """
    model: type[Workflow] | type[Campaign] = Workflow if subject == "workflow" else Campaign
    problems: list[DomainError] = []
    try:
        chosen = _chosen(params, subject, model)
    except DomainError as refused:
        problems.append(refused)
        chosen = None
    try:
        window = window_from(params)
    except DomainError as refused:
        problems.append(refused)
        window = 7
    return LiftQuery(chosen, window, problems)
