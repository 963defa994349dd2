"""
The lift's rollup: for every workflow event run in a lift audience (admitted, or skipped as held out) one
`RunConversion` row (customer, start, held out or the A/B branch taken) and, per day after the run on which the
customer ordered, one `RunConversionDay` row (orders, net revenue in the shop currency). "Converted within W
days" is then "has a day row with offset <= W", and the revenue within W days the sum of those rows — exactly
what the raw query over runs and orders computed (an order counts when run start < placed_at <= start + W days;
offset = whole days after the start, rounded up), without reading orders on a page view.

Refreshed with the other rollups (`services.rollups_refresh`): runs changed since the previous refresh get their
row (re)written, and every run whose 90-day horizon holds an order changed since then (a new order, a refund, a
cancellation) gets its day rows recomputed — in chunks, one orders query per chunk of runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery

from apps.automations.choices import HELD_OUT, RunKind, RunStatus, StepKind
from apps.automations.models import WorkflowRun, WorkflowRunStep
from apps.customers.choices import OrderStatus
from apps.customers.models import Order

from .models import RunConversion, RunConversionDay

HORIZON_DAYS = 90  # the longest conversion window a report may ask for
CHUNK = 5000
ZERO = Decimal("0.00")
DAY_SECONDS = 86_400


def _audience() -> Q:
    return Q(kind=RunKind.EVENT, customer__isnull=False) & (~Q(status=RunStatus.SKIPPED) | Q(skip_reason=HELD_OUT))


def _runs_write(run_ids: list[int]) -> list[int]:
    """(Re)write the RunConversion rows of these runs; returns the ids now in the audience."""
    split_step = (
        WorkflowRunStep.objects.filter(run_id=OuterRef("pk"), kind=StepKind.SPLIT).order_by("path").values("branch")[:1]
    )
    rows = [
        RunConversion(
            run_id=pk,
            workflow_id=workflow_id,
            customer_id=customer_id,
            created_at=created_at,
            held_out=status == RunStatus.SKIPPED,
            branch=(branch or "")[:40],
        )
        for pk, workflow_id, customer_id, created_at, status, branch in WorkflowRun.objects.filter(
            _audience(), pk__in=run_ids
        )
        .annotate(branch_name=Subquery(split_step))
        .values_list("pk", "workflow_id", "customer_id", "created_at", "status", "branch_name")
    ]
    RunConversion.objects.filter(run_id__in=run_ids).exclude(run_id__in=[row.run_id for row in rows]).delete()
    RunConversion.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["run"],
        update_fields=["workflow", "customer", "created_at", "held_out", "branch"],
    )
    return [row.run_id for row in rows]


# PostgreSQL does it in one statement per chunk (the orders' (customer, placed_at) index per run); elsewhere the
# rows are computed in Python from one orders query per chunk. Both give the same rows (tested on both).
DAYS_SQL = """
INSERT INTO reports_runconversionday (conversion_id, "offset", orders, revenue)
SELECT r.run_id, CEIL(EXTRACT(EPOCH FROM (o.placed_at - r.created_at)) / 86400)::int AS day_after, COUNT(*),
       COALESCE(SUM(o.total_shop - COALESCE(o.refunded_total_shop, 0)), 0)
FROM reports_runconversion r
JOIN customers_order o ON o.customer_id = r.customer_id AND o.placed_at > r.created_at
     AND o.placed_at <= r.created_at + make_interval(days => %s)
WHERE r.run_id = ANY(%s) AND o.status <> %s
GROUP BY r.run_id, day_after
"""


def _days_write(run_ids: list[int]) -> int:
    """Recompute the day rows of these runs from their customers' orders within the horizon. Returns rows."""
    if connection.vendor == "postgresql":
        RunConversionDay.objects.filter(conversion_id__in=run_ids).delete()
        with connection.cursor() as cursor:
            cursor.execute(DAYS_SQL, [HORIZON_DAYS, list(run_ids), OrderStatus.CANCELLED])
            return cursor.rowcount
    runs = list(RunConversion.objects.filter(run_id__in=run_ids).values_list("run_id", "customer_id", "created_at"))
    if not runs:
        RunConversionDay.objects.filter(conversion_id__in=run_ids).delete()
        return 0
    horizon = timedelta(days=HORIZON_DAYS)
    orders: dict[int, list[tuple[datetime, Decimal | None]]] = defaultdict(list)
    for customer_id, placed_at, total, refunded in (
        Order.objects.filter(
            customer_id__in={customer_id for _, customer_id, _ in runs},
            placed_at__gt=min(created for _, _, created in runs),
            placed_at__lte=max(created for _, _, created in runs) + horizon,
        )
        .exclude(status=OrderStatus.CANCELLED)
        .values_list("customer_id", "placed_at", "total_shop", "refunded_total_shop")
        .order_by()
    ):
        # An order without a known shop amount converts but adds no revenue (as in every report).
        orders[customer_id].append((placed_at, None if total is None else total - (refunded or ZERO)))
    rows: list[RunConversionDay] = []
    for run_id, customer_id, created_at in runs:
        per_day: dict[int, list] = {}
        for placed_at, net in orders.get(customer_id, ()):
            seconds = (placed_at - created_at).total_seconds()
            if not 0 < seconds <= HORIZON_DAYS * DAY_SECONDS:
                continue
            offset = math.ceil(seconds / DAY_SECONDS)
            day = per_day.setdefault(offset, [0, ZERO])
            day[0] += 1
            day[1] += net or ZERO
        rows += [
            RunConversionDay(conversion_id=run_id, offset=offset, orders=count, revenue=revenue)
            for offset, (count, revenue) in per_day.items()
        ]
    RunConversionDay.objects.filter(conversion_id__in=run_ids).delete()
    RunConversionDay.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def conversions_refresh(*, since: datetime | None) -> int:
    """
    Bring the lift's rollup up to date with the runs and orders changed since `since` (None: rebuild it whole).
    Returns how many runs were recomputed. Runs inside the caller's transaction (the rollups' lock).
    """
    if since is None:
        RunConversion.objects.all().delete()
        changed = WorkflowRun.objects.filter(_audience())
    else:
        changed = WorkflowRun.objects.filter(updated_at__gte=since)
    run_ids = list(changed.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(run_ids), CHUNK):
        chunk = run_ids[start : start + CHUNK]
        with transaction.atomic():
            _days_write(_runs_write(chunk))
    recomputed = len(run_ids)
    if since is None:
        return recomputed
    # Runs whose horizon holds an order changed since then (new, refunded, cancelled): their day rows again.
    touched: dict[int, tuple[datetime, datetime]] = {}
    changed_orders = Order.objects.filter(Q(updated_at__gte=since) | Q(refunds__created_at__gte=since))
    for customer_id, placed_at in changed_orders.values_list("customer_id", "placed_at").distinct().order_by():
        low, high = touched.get(customer_id, (placed_at, placed_at))
        touched[customer_id] = (min(low, placed_at), max(high, placed_at))
    customers = sorted(touched)
    horizon = timedelta(days=HORIZON_DAYS)
    for start in range(0, len(customers), CHUNK):
        chunk = customers[start : start + CHUNK]
        low = min(touched[customer][0] for customer in chunk) - horizon
        high = max(touched[customer][1] for customer in chunk)
        affected = list(
            RunConversion.objects.filter(customer_id__in=chunk, created_at__gte=low, created_at__lt=high).values_list(
                "run_id", flat=True
            )
        )
        for index in range(0, len(affected), CHUNK):
            with transaction.atomic():
                _days_write(affected[index : index + CHUNK])
        recomputed += len(affected)
    return recomputed
