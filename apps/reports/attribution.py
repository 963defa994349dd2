"""
Message and tag attribution: orders placed within N days after a message (a messaging `Delivery` with status sent),
credited to the workflow or the campaign that sent it, or after a workflow tagged the customer (a `TagAudit` "added"
row whose source_ref is `workflow_run:<id>` or `bulk_run:<id>`), credited to that workflow.

- **Which touch.** Last touch: each order (not cancelled) goes to the last touch of its customer before it was
  placed — a message sent or a tag added by a workflow, whichever came last — at most 90 days before; so an order is
  counted once, never once per message or tag (a workflow that sent a message and added a tag counts the order
  once, under the later of the two). Only touches whose cause names a sender count: `workflow_run:<id>` and
  `bulk_run:<id>` (→ that run's workflow) and, for messages, `campaign:<id>`. On the same instant the message wins.
- **Window.** `DailyMessageOrders` keeps, per day the order was placed and kind of touch (message or tag), the whole
  days between touch and order (rounded up, 1 to 90), so any window W of 1 to 90 days sums the rows with
  offset ≤ W; `DailyMessages` counts the messages sent per day, sender and channel.
- **Refresh.** Part of the daily rollups (`services._days_recompute`): the days recomputed are the changed order
  days plus, for each message sent or workflow tag added since the previous refresh, the days of its customer's
  orders in the 90 days after it (in practice today); one query per source per range of days, set-based.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Substr, TruncDate
from django.utils import timezone

from apps.automations.models import WorkflowRun
from apps.campaigns.models import Campaign
from apps.customers.choices import OrderStatus
from apps.customers.messaging.choices import DeliveryStatus
from apps.customers.messaging.models import Delivery
from apps.customers.models import Order
from apps.tagging.choices import TagAuditAction
from apps.tagging.models import TagAudit

from .models import DailyMessageOrders, DailyMessages, Touch

HORIZON = timedelta(days=90)
ZERO = Decimal("0.00")
DAY_SECONDS = 86_400
RUN_CAUSE = r"^(workflow|bulk)_run:[0-9]{1,18}$"
CAMPAIGN_CAUSE = r"^campaign:[0-9]{1,18}$"
CHUNK = 5000

Ranges = list[tuple[datetime, datetime]] | None


def _within(field: str, ranges: Ranges) -> Q:
    if ranges is None:
        return Q()
    q = Q(pk__in=[])
    for start, end in ranges:
        q |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    return q


def attributable() -> Q:
    """Sent messages whose cause names a workflow run, a bulk run or a campaign."""
    return Q(status=DeliveryStatus.SENT, sent_at__isnull=False) & (
        Q(cause__regex=RUN_CAUSE) | Q(cause__regex=CAMPAIGN_CAUSE)
    )


def tagged() -> Q:
    """Tags added whose source names a workflow run or a bulk run."""
    return Q(action=TagAuditAction.ADDED, source_ref__regex=RUN_CAUSE)


def _run_id(field: str) -> Case:
    return Case(
        When(**{f"{field}__startswith": "workflow_run:"}, then=Cast(Substr(field, 14), IntegerField())),
        When(**{f"{field}__startswith": "bulk_run:"}, then=Cast(Substr(field, 10), IntegerField())),
        default=Value(None),
        output_field=IntegerField(),
    )


def _tags_with_workflow(audits: QuerySet[TagAudit]) -> QuerySet[TagAudit]:
    """Annotate `sender_workflow`: the workflow of the run named by the tag's source_ref, in SQL."""
    return audits.annotate(sender_run=_run_id("source_ref")).annotate(
        sender_workflow=Subquery(WorkflowRun.objects.filter(pk=OuterRef("sender_run")).values("workflow_id")[:1]),
    )


def _with_sender(deliveries: QuerySet[Delivery]) -> QuerySet[Delivery]:
    """Annotate `sender_workflow` (the run's workflow) and `sender_campaign` from the cause, in SQL."""
    run_id = _run_id("cause")
    campaign_id = Case(
        When(cause__regex=CAMPAIGN_CAUSE, then=Cast(Substr("cause", 10), IntegerField())),
        default=Value(None),
        output_field=IntegerField(),
    )
    return deliveries.annotate(
        sender_run=run_id,
        sender_campaign=campaign_id,
    ).annotate(
        sender_workflow=Subquery(WorkflowRun.objects.filter(pk=OuterRef("sender_run")).values("workflow_id")[:1]),
    )


def messages_rows(ranges: Ranges) -> list[DailyMessages]:
    """Messages sent per day, sender and channel (for the days in `ranges`; None: every day)."""
    campaigns = set(Campaign.objects.values_list("pk", flat=True))
    rows = (
        _with_sender(Delivery.objects.filter(attributable(), _within("sent_at", ranges)))
        .annotate(day=TruncDate("sent_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "sender_workflow", "sender_campaign", "channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    out = []
    for row in rows:
        campaign_id = row["sender_campaign"] if row["sender_campaign"] in campaigns else None
        if row["sender_workflow"] is None and campaign_id is None:
            continue  # the run or campaign is gone
        out.append(
            DailyMessages(
                day=row["day"],
                workflow_id=row["sender_workflow"],
                campaign_id=campaign_id,
                channel=row["channel"],
                sent=row["n"],
            )
        )
    return out


def _last_touch() -> Subquery:
    return Subquery(
        Delivery.objects.filter(
            attributable(),
            customer_id=OuterRef("customer_id"),
            sent_at__lt=OuterRef("placed_at"),
            sent_at__gte=OuterRef("placed_at") - HORIZON,
        )
        .order_by("-sent_at", "-pk")
        .values("pk")[:1]
    )


def _last_tag() -> Subquery:
    return Subquery(
        TagAudit.objects.filter(
            tagged(),
            customer_id=OuterRef("customer_id"),
            created_at__lt=OuterRef("placed_at"),
            created_at__gte=OuterRef("placed_at") - HORIZON,
        )
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )


def orders_rows(ranges: Ranges) -> list[DailyMessageOrders]:
    """Orders attributed to a message or a tag per order day, sender, touch and days after it (for `ranges`)."""
    net = ExpressionWrapper(
        Coalesce(F("total_shop"), Value(ZERO)) - Coalesce(F("refunded_total_shop"), Value(ZERO)),
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )
    touched = (
        Order.objects.filter(_within("placed_at", ranges), customer__isnull=False)
        .exclude(status=OrderStatus.CANCELLED)
        .annotate(delivery_id=_last_touch(), tag_id=_last_tag())
        .filter(Q(delivery_id__isnull=False) | Q(tag_id__isnull=False))
        .annotate(net=net)
        .values_list("placed_at", "delivery_id", "tag_id", "net")
        .order_by()
    )
    cells: dict[tuple[date, int | None, int | None, str, int], list[Any]] = defaultdict(lambda: [0, ZERO])
    pending: list[tuple[datetime, int | None, int | None, Decimal]] = []

    def flush() -> None:
        deliveries: Any = _with_sender(Delivery.objects.filter(pk__in={pk for _, pk, _, _ in pending if pk}))
        senders = {
            row["pk"]: (row["sent_at"], row["sender_workflow"], row["sender_campaign"])
            for row in deliveries.values("pk", "sent_at", "sender_workflow", "sender_campaign")
        }
        audits: Any = _tags_with_workflow(TagAudit.objects.filter(pk__in={pk for _, _, pk, _ in pending if pk}))
        taggers = {
            row["pk"]: (row["created_at"], row["sender_workflow"], None)
            for row in audits.values("pk", "created_at", "sender_workflow")
        }
        for placed_at, delivery_id, tag_id, money in pending:
            message = senders[delivery_id] if delivery_id else None
            tag = taggers[tag_id] if tag_id else None
            # Last touch: the later of the last message and the last workflow tag (the message on a tie).
            if tag is not None and (message is None or tag[0] > message[0]):
                touch, (touched_at, workflow_id, campaign_id) = Touch.TAG, tag
            else:
                assert message is not None
                touch, (touched_at, workflow_id, campaign_id) = Touch.MESSAGE, message
            if workflow_id is None and campaign_id is None:
                continue
            offset = math.ceil((placed_at - touched_at).total_seconds() / DAY_SECONDS)
            cell = cells[(timezone.localtime(placed_at).date(), workflow_id, campaign_id, touch, offset)]
            cell[0] += 1
            cell[1] += money
        pending.clear()

    for row in touched.iterator(chunk_size=CHUNK):
        pending.append(row)
        if len(pending) >= CHUNK:
            flush()
    if pending:
        flush()
    campaigns = set(Campaign.objects.values_list("pk", flat=True))
    return [
        DailyMessageOrders(
            day=day,
            workflow_id=workflow_id,
            campaign_id=campaign_id if campaign_id in campaigns else None,
            touch=touch,
            offset=offset,
            orders=count,
            revenue=money,
        )
        for (day, workflow_id, campaign_id, touch, offset), (count, money) in cells.items()
        if workflow_id is not None or campaign_id in campaigns
    ]


def changed_days(since: datetime) -> set[date]:
    """
    Order days whose attribution a message sent or a workflow tag added since `since` may change: the days of its
    customer's orders in the 90 days after it; and the days the messages were sent (their counts).
    """
    days: set[date] = set()
    sent: dict[int, datetime] = {}
    for customer_id, sent_at in Delivery.objects.filter(attributable(), sent_at__gte=since).values_list(
        "customer_id", "sent_at"
    ):
        if sent_at is None:
            continue
        days.add(timezone.localtime(sent_at).date())
        if customer_id is not None:
            sent[customer_id] = min(sent_at, sent.get(customer_id, sent_at))
    for customer_id, added_at in TagAudit.objects.filter(tagged(), created_at__gte=since).values_list(
        "customer_id", "created_at"
    ):
        sent[customer_id] = min(added_at, sent.get(customer_id, added_at))
    customers = sorted(sent)
    for start in range(0, len(customers), CHUNK):
        chunk = customers[start : start + CHUNK]
        earliest = min(sent[customer_id] for customer_id in chunk)
        for customer_id, placed_at in Order.objects.filter(
            customer_id__in=chunk, placed_at__gt=earliest, placed_at__lte=earliest + HORIZON + timedelta(days=1)
        ).values_list("customer_id", "placed_at"):
            if sent[customer_id] < placed_at <= sent[customer_id] + HORIZON:
                days.add(timezone.localtime(placed_at).date())
    return days


# --- reading ------------------------------------------------------------------------------------------------


def attribution_by_sender(
    start: date, end: date, window_days: int, *, owner: str, owner_ids: Iterable[int] | None = None
) -> dict[int, dict[str, Any]]:
    """
    Per workflow (owner "workflow") or campaign: messages sent, orders attributed within the window (after a message
    or a tag, last touch) and their revenue, and of those the orders and revenue after a workflow's tag.
    """
    field = f"{owner}_id"
    messages = DailyMessages.objects.filter(day__gte=start, day__lte=end, **{f"{field}__isnull": False})
    orders = DailyMessageOrders.objects.filter(
        day__gte=start, day__lte=end, offset__lte=window_days, **{f"{field}__isnull": False}
    )
    if owner_ids is not None:
        messages = messages.filter(**{f"{field}__in": list(owner_ids)})
        orders = orders.filter(**{f"{field}__in": list(owner_ids)})
    out: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"sent": 0, "orders": 0, "revenue": ZERO, "tag_orders": 0, "tag_revenue": ZERO}
    )
    for owner_id, sent in messages.values(field).annotate(n=Sum("sent")).values_list(field, "n").order_by():
        out[owner_id]["sent"] = sent or 0
    after_tag = Q(touch=Touch.TAG)
    for owner_id, count, money, tag_count, tag_money in (
        orders.values(field)
        .annotate(
            n=Sum("orders"),
            r=Sum("revenue"),
            tn=Sum("orders", filter=after_tag),
            tr=Sum("revenue", filter=after_tag),
        )
        .values_list(field, "n", "r", "tn", "tr")
        .order_by()
    ):
        out[owner_id]["orders"] = count or 0
        out[owner_id]["revenue"] = Decimal(money or 0).quantize(Decimal("0.01"))
        out[owner_id]["tag_orders"] = tag_count or 0
        out[owner_id]["tag_revenue"] = Decimal(tag_money or 0).quantize(Decimal("0.01"))
    return dict(out)
