"""
Limit counters: the machinery under every "at most N per period" rule of the product — promotions' budgets
(`apps.campaigns.promotions`: redemptions, money, distinct customers) and loyalty's points limits of earning
rules (`apps.loyalty`). It lives in the bottom app so that loyalty, below campaigns, uses the same code.

A limit is counted in one counter row per (limit, period bucket, subject): `bucket` is the first day of the
calendar period in the shop time zone (1970-01-01 for "in total"), `subject` says whose usage it is ("" for the
whole limit, `customer:<id>`, `code:<id>` …). Each app keeps its own counter table (a concrete subclass of
`CounterBase` with a foreign key to its own limit model) and calls these functions with it:

1. `counters_ensure` inserts the missing counters in key order (`INSERT … ON CONFLICT DO NOTHING`);
2. `counters_lock` locks them, ascending primary key (`SELECT … FOR UPDATE`) — the fixed order is what keeps two
   transactions from waiting on each other in a circle;
3. the caller decides on the locked figures, then `counter_take` takes each amount with a conditional
   `UPDATE … SET used = used + x WHERE used <= limit_value - x` (a check constraint also keeps
   `used <= limit_value`): under the lock it cannot fail, and if it ever did the caller's transaction rolls back;
4. `counter_give_back` returns an amount (a rollback, a released reservation, a reversed earning).
Never a unit over the limit, under any concurrency.

`counters_take_up_to` is steps 1-3 for a caller that reduces an amount to what every limit leaves (points of an
earning rule, points a campaign awards). The rules every owner of a limit follows live here too, once:
`counters_follow` (a changed limit value reaches its counters; a lower one never takes back what was used),
`limit_reshape_refuse` (what a limit counts cannot change once it has counted something), and `limit_row_update`,
the one update sequence both owners' `…_limit_update` services run (lock, refuse a reshape, set, check, save,
counters follow, audit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from loyalty_site.lib.errors import ConflictError

from .audit import audit_record, audit_snapshot

TOTAL_BUCKET = date(1970, 1, 1)


class LimitPeriod(models.TextChoices):
    TOTAL = "total", "In total"
    DAY = "day", "Per day"
    WEEK = "week", "Per week (Monday to Sunday)"
    MONTH = "month", "Per month"


def period_bucket(period: str, now: datetime) -> date:
    """First day of the calendar period containing `now` in the shop time zone (TOTAL_BUCKET for "in total")."""
    if period == LimitPeriod.TOTAL:
        return TOTAL_BUCKET
    day = timezone.localtime(now).date()
    if period == LimitPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    if period == LimitPeriod.MONTH:
        return day.replace(day=1)
    return day


class CounterBase(models.Model):
    """
    Usage of one limit in one period bucket for one subject. Concrete subclasses add `limit` (a foreign key to
    their limit model), the unique constraint (limit, bucket, subject) and the check `used <= limit_value`.
    """

    bucket = models.DateField(help_text="First day of the period (1970-01-01 for total)")
    subject = models.CharField(max_length=40, blank=True)
    limit_value = models.DecimalField(max_digits=14, decimal_places=2, help_text="Copy of the limit, for the UPDATE")
    used = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    limit_id: int

    class Meta:
        abstract = True


Counter = TypeVar("Counter", bound=CounterBase)
LimitRow = TypeVar("LimitRow", bound=models.Model)
CounterKey = tuple[int, date, str]  # (limit id, bucket, subject)


def counters_ensure(model: type[Counter], limits: Mapping[CounterKey, Decimal]) -> None:
    """Insert the counters that do not exist yet (`limits`: key → limit value), in key order."""
    if limits:
        model._default_manager.bulk_create(
            [model(limit_id=key[0], bucket=key[1], subject=key[2], limit_value=limits[key]) for key in sorted(limits)],
            ignore_conflicts=True,
        )


def counters_lock(
    model: type[Counter], keys: Iterable[CounterKey], *, extra_ids: Iterable[int] = ()
) -> dict[CounterKey, Counter]:
    """Lock the counters of `keys` (and the rows `extra_ids`) in ascending primary key; returns them by key."""
    match = Q(pk__in=list(extra_ids))
    for limit_id, bucket, subject in keys:
        match |= Q(limit_id=limit_id, bucket=bucket, subject=subject)
    rows: Any = model._default_manager.select_for_update().filter(match).order_by("pk")
    return {(row.limit_id, row.bucket, row.subject): row for row in rows}


def counter_take(model: type[Counter], counter_id: int, amount: Decimal) -> bool:
    """Take `amount` if it fits (one conditional UPDATE); False when it does not (nothing taken)."""
    return (
        model._default_manager.filter(pk=counter_id, used__lte=F("limit_value") - amount).update(
            used=F("used") + amount
        )
        == 1
    )


def counter_give_back(model: type[Counter], counter_id: int, amount: Decimal) -> None:
    """Return `amount` to a counter (never below zero)."""
    if amount > 0:
        model._default_manager.filter(pk=counter_id).update(used=Greatest(F("used") - amount, Decimal("0")))


def counters_take_up_to(
    model: type[Counter], limits: Mapping[CounterKey, Decimal], amount: Decimal
) -> tuple[Decimal, list[Counter]]:
    """
    Take as much of `amount` as every counter of `limits` (key → limit value) leaves, from each of them: counters
    created if missing, locked in ascending primary key, then taken. Returns (what was taken, the counters it was
    taken from — empty when nothing was). The caller's transaction holds the locks until it commits.
    """
    if not limits or amount <= 0:
        return (amount if amount > 0 else Decimal("0")), []
    counters_ensure(model, limits)
    locked = counters_lock(model, limits)
    for key in limits:
        amount = min(amount, max(locked[key].limit_value - locked[key].used, Decimal("0")))
    if amount <= 0:
        return Decimal("0"), []
    counters = sorted((locked[key] for key in limits), key=lambda row: row.pk)
    for counter in counters:
        if not counter_take(model, counter.pk, amount):  # cannot happen under the lock
            raise ConflictError("The limit was used up meanwhile.", path="limits", code="limit_reached")
    return amount, counters


def counters_follow(model: type[Counter], limit_id: int, value: Decimal, *, exclude: Q | None = None) -> None:
    """
    A limit's new value reaches its counters (those matching `exclude` keep theirs). A lower value never takes
    back what was used: a counter past it is closed at what it used (nothing more fits).
    """
    counters = model._default_manager.filter(limit_id=limit_id)
    if exclude is not None:
        counters = counters.exclude(exclude)
    counters.filter(used__lte=value).update(limit_value=value)
    counters.filter(used__gt=value).update(limit_value=F("used"))


def limit_reshape_refuse(model: type[Counter], limit_id: int, *, message: str, path: str) -> None:
    """409 `limit_in_use` when the limit has counted something (its period, scope or measure would lie about it)."""
    if model._default_manager.filter(limit_id=limit_id, used__gt=0).exists():
        raise ConflictError(message, path=path, code="limit_in_use")


def limit_row_update(
    limit: LimitRow,
    fields: Mapping[str, Any],
    *,
    counter_model: type[Counter],
    shape: Iterable[str],
    check: Callable[[LimitRow], None],
    value: Callable[[LimitRow], Decimal],
    message: str,
    path: str,
    user: Any = None,
    exclude: Q | None = None,
) -> LimitRow:
    """
    Change a limit row, in the caller's transaction: the row is locked, a change of what it counts (`shape`:
    field names; a foreign key compares by id) is refused once it has counted something, the new values are set
    and checked (`check` raises ValidationError), the row is saved, its counters follow `value(row)` (those
    matching `exclude` keep theirs) and the change is audited with the old and new values.
    """
    row = type(limit)._default_manager.select_for_update().get(pk=limit.pk)
    before = audit_snapshot(row)
    if any(row.serializable_value(key) != getattr(fields[key], "pk", fields[key]) for key in shape if key in fields):
        limit_reshape_refuse(counter_model, row.pk, message=message, path=path)
    for key, item in fields.items():
        setattr(row, key, item)
    check(row)
    row.save()
    counters_follow(counter_model, row.pk, value(row), exclude=exclude)
    audit_record(action="updated", obj=row, before=before, user=user)
    return row
