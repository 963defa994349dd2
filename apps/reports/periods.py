"""Reading a report's date range from a query string (pages and API alike); bad input names its field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

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


def workflow_from(params: Mapping[str, str]) -> Workflow | None:
    """The workflow chosen by `?workflow=<id>` (None when not given); an unknown id names the field."""
    text = (params.get("workflow") or "").strip()[:20]
    if not text:
        return None
    workflow = Workflow.objects.filter(pk=int(text)).first() if text.isdigit() and len(text) < 19 else None
    if workflow is None:
        raise DomainError("workflow: no workflow with this id.", path="workflow", code="invalid")
    return workflow


def campaign_from(params: Mapping[str, str]) -> Campaign | None:
    """The campaign chosen by `?campaign=<id>` (None when not given); an unknown id names the field."""
    text = (params.get("campaign") or "").strip()[:20]
    if not text:
        return None
    campaign = Campaign.objects.filter(pk=int(text)).first() if text.isdigit() and len(text) < 19 else None
    if campaign is None:
        raise DomainError("campaign: no campaign with this id.", path="campaign", code="invalid")
    return campaign
