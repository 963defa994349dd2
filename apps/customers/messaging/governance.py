"""
Send governance for marketing messages (transactional ones are exempt), decided when a delivery is queued:

1. **frequency caps** — at most N marketing messages per customer per day and per week, per channel and
   over all channels (`SendingPolicy`; empty = no cap). Days are the customer's calendar days (a DST day
   has 23 or 25 hours); a week is today and the six days before. Sent and queued rows count.
2. **workflow priority** — when two workflows message the same customer within the priority window, the
   higher-priority one wins: the lower one is suppressed `lower_priority` (or, if it is still queued,
   it is suppressed when the higher one arrives). Equal priorities both go (within the caps).
3. **quiet hours** — a message falling in the quiet hours of the customer's time zone (for the channels
   the policy names) is delayed to the end of the quiet hours: it stays queued with `send_after`, never
   dropped.

One query reads the recent marketing rows of all customers concerned, so a bulk run decides its whole
chunk at once (`governance_decide_many`) with the same code as one workflow step (`governance_decide`).

A row counts in the calendar day it reaches the customer: when it was sent, or — still queued — when it is
due (`send_after`), else when it was written. A message delayed overnight by quiet hours counts tomorrow.

**At send time** (`governance_recheck_many`) a row that waited — delayed by quiet hours, a retry after a
transient provider error, or a due row whose sending task was lost — is decided again, because the world
moved meanwhile: consent and the suppression list (by the caller), the frequency caps counted from what was
actually sent (or is being sent by another sender) in the customer's day and week at send time, and the
quiet hours at send time (a retry falling into them is delayed again). Priority is not re-decided: a queued
row outranked meanwhile was already suppressed when the higher-priority one arrived.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .choices import DeliveryReason, DeliveryStatus, Purpose

if TYPE_CHECKING:
    from apps.customers.models import Customer

    from .models import Delivery, SendingPolicy


@dataclass(frozen=True)
class Decision:
    reason: str | None = None  # suppressed with this reason
    send_after: datetime | None = None  # delayed (stays queued) until then
    outranked: tuple[int, ...] = field(default=())  # queued lower-priority rows this message suppresses


SEND_NOW = Decision()


def customer_time_zone(customer: Customer | None, policy: SendingPolicy) -> ZoneInfo:
    """
    The customer's IANA time zone (`Customer.time_zone`), else the policy's default. `attributes.time_zone`
    is no longer read: migration customers 0016 moved every known name from there to the column.
    """
    name = customer.time_zone if customer is not None else ""
    for candidate in (name, policy.default_time_zone, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _local_midnight(day: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(day.date(), time(0), tzinfo=zone)


def in_quiet_hours(local: datetime, start: time, end: time) -> bool:
    moment = local.time()
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end  # over midnight (21:00 - 08:00)


def quiet_hours_end(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours around `now` end (an aware UTC-comparable datetime), or None outside them."""
    local = now.astimezone(zone)
    if not in_quiet_hours(local, start, end):
        return None
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    # A wall time in a DST gap does not exist: round-tripping through UTC moves it to a real instant.
    return datetime.combine(day, end, tzinfo=zone).astimezone(ZoneInfo("UTC")).astimezone(zone)


def _caps(policy: SendingPolicy, channel: str) -> tuple[int | None, int | None, int | None, int | None]:
    per_day = getattr(policy, f"{channel}_per_day", None)
    per_week = getattr(policy, f"{channel}_per_week", None)
    return per_day, per_week, policy.any_per_day, policy.any_per_week


def _cap_reached(
    counted: list[tuple[str, datetime]], *, channel: str, zone: ZoneInfo, now: datetime, policy: SendingPolicy
) -> bool:
    """Whether the (channel, moment) messages already counted leave no room for one more on `channel` now."""
    per_day, per_week, any_day, any_week = _caps(policy, channel)
    if all(cap is None for cap in (per_day, per_week, any_day, any_week)) or not counted:
        return False
    local_now = now.astimezone(zone)
    today = _local_midnight(local_now, zone)
    week = _local_midnight(local_now - timedelta(days=6), zone)
    counts = {"day": 0, "week": 0, "any_day": 0, "any_week": 0}
    for row_channel, moment in counted:
        # A row due later than today (a delayed one) counts on its own day, not this one.
        if week <= moment and moment.astimezone(zone).date() <= local_now.date():
            counts["any_week"] += 1
            counts["week"] += row_channel == channel
            if moment >= today:
                counts["any_day"] += 1
                counts["day"] += row_channel == channel
    limits = (("day", per_day), ("week", per_week), ("any_day", any_day), ("any_week", any_week))
    return any(limit is not None and counts[name] >= limit for name, limit in limits)


def _moment(status: str, created: datetime, sent_at: datetime | None, send_after: datetime | None) -> datetime:
    """When a marketing row reaches (or reached) the customer: the day it counts in."""
    if status == DeliveryStatus.SENT:
        return sent_at or created
    return send_after or created


def quiet_delay(policy: SendingPolicy, *, channel: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The end of the quiet hours when `now` falls in them for this channel, else None."""
    start, end = policy.quiet_hours_start, policy.quiet_hours_end
    if start is None or end is None or channel not in policy.quiet_channels():
        return None
    return quiet_hours_end(now, zone, start, end)


def governance_decide_many(
    customers: list[Customer], *, channel: str, purpose: str, priority: int, cause: str, now: datetime
) -> dict[int, Decision]:
    """customer id -> decision for the customers who may not be messaged now (absent: send now)."""
    from .models import Delivery, SendingPolicy

    if purpose != Purpose.MARKETING or not customers:
        return {}
    policy = SendingPolicy.current()
    window = timedelta(minutes=policy.priority_window_minutes)
    # Enough history for a week of calendar days in any time zone, and for the priority window.
    since = min(now - timedelta(days=8), now - window)
    recent = Delivery.objects.filter(
        customer_id__in=[customer.pk for customer in customers],
        purpose=Purpose.MARKETING,
        status__in=[DeliveryStatus.SENT, DeliveryStatus.QUEUED],
        created_at__gte=since,
    ).values_list("pk", "customer_id", "channel", "created_at", "priority", "status", "cause", "sent_at", "send_after")
    history: dict[int, list[tuple]] = defaultdict(list)
    for row in recent:
        history[row[1]].append(row)
    decisions: dict[int, Decision] = {}
    for customer in customers:
        rows = history.get(customer.pk, [])
        zone = customer_time_zone(customer, policy)
        # 1. frequency caps, in the customer's calendar days
        counted = [(row[2], _moment(row[5], row[3], row[7], row[8])) for row in rows]
        if _cap_reached(counted, channel=channel, zone=zone, now=now, policy=policy):
            decisions[customer.pk] = Decision(reason=DeliveryReason.FREQUENCY_CAP)
            continue
        # 2. priority: a higher-priority workflow's message within the window wins
        nearby = [row for row in rows if row[3] >= now - window and (row[6] != cause or not cause)]
        if any(row[4] > priority for row in nearby):
            decisions[customer.pk] = Decision(reason=DeliveryReason.LOWER_PRIORITY)
            continue
        outranked = tuple(row[0] for row in nearby if row[4] < priority and row[5] == DeliveryStatus.QUEUED)
        # 3. quiet hours: delayed, never dropped
        send_after = quiet_delay(policy, channel=channel, zone=zone, now=now)
        if send_after is not None or outranked:
            decisions[customer.pk] = Decision(send_after=send_after, outranked=outranked)
    return decisions


def governance_decide(
    customer: Customer | None, *, channel: str, purpose: str, priority: int, cause: str, now: datetime
) -> Decision:
    if customer is None:
        return SEND_NOW
    decisions = governance_decide_many(
        [customer], channel=channel, purpose=purpose, priority=priority, cause=cause, now=now
    )
    return decisions.get(customer.pk, SEND_NOW)


def governance_recheck_many(
    rows: list[Delivery], *, token: str, claim_ttl: timedelta, now: datetime
) -> dict[int, Decision]:
    """
    Delivery id -> decision for claimed marketing rows (claimed with `token`) that waited and may no longer go
    now: over a frequency cap counted at send time (what was sent, plus what another sender is sending right
    now, plus the rows of this batch decided before it, in id order), or back in quiet hours (delayed again).
    Absent: send. One query for the batch. Callers hold the customers' row locks, so two senders re-checking
    the same customer's rows take turns and cannot both fill the last place under a cap.
    """
    from django.db.models import Q

    from .models import Delivery, SendingPolicy

    rows = [row for row in rows if row.purpose == Purpose.MARKETING and row.customer_id is not None]
    if not rows:
        return {}
    policy = SendingPolicy.current()
    customer_ids = sorted({row.customer_id for row in rows if row.customer_id is not None})
    earlier = (
        Delivery.objects.filter(customer_id__in=customer_ids, purpose=Purpose.MARKETING)
        .filter(
            Q(status=DeliveryStatus.SENT, sent_at__gte=now - timedelta(days=8))
            | (
                Q(status=DeliveryStatus.QUEUED, claimed_at__gte=now - claim_ttl)
                & ~Q(claim_token="")
                & ~Q(claim_token=token)
            )
        )
        .values_list("customer_id", "channel", "status", "created_at", "sent_at")
    )
    counted: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for customer_id, row_channel, status, created, sent_at in earlier:
        # Being sent by another sender right now: it reaches the customer now. A row sent is never later than
        # now (a sender stamps `sent_at` from the clock, which may run a little past its batch's `now`).
        moment = min(sent_at or created, now) if status == DeliveryStatus.SENT else now
        counted[customer_id].append((row_channel, moment))
    decisions: dict[int, Decision] = {}
    for row in sorted(rows, key=lambda row: row.pk):
        customer = row.customer
        zone = customer_time_zone(customer, policy)
        mine = counted[row.customer_id or 0]
        if _cap_reached(mine, channel=row.channel, zone=zone, now=now, policy=policy):
            decisions[row.pk] = Decision(reason=DeliveryReason.FREQUENCY_CAP)
            continue
        send_after = quiet_delay(policy, channel=row.channel, zone=zone, now=now)
        if send_after is not None:
            decisions[row.pk] = Decision(send_after=send_after)
            continue
        mine.append((row.channel, now))  # goes now: counts for the rows after it
    return decisions
