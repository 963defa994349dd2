"""
The lift's rollups. Three layers, each refreshed incrementally with the other rollups (`services.rollups_refresh`):

1. **Exposures.** `RunConversion`: every workflow event run in a lift audience (admitted, or skipped as held out)
   — customer, start, local day, held out or the A/B branch taken. `CampaignConversion`: a customer's exposure to a
   campaign — the first code published to them, or the first time the campaign held them out.
   A run is an *exposure* (counted in the lift) when the customer had no exposure to the same workflow in the 90
   days before: a customer who triggers the workflow every week counts once per 90 days, and their conversion
   windows never overlap. This depends only on the customer's own runs, never on the period a report asks for —
   which is what lets the lift be pre-aggregated per day.
2. **Days after.** `RunConversionDay` / `CampaignConversionDay`: per exposure, per day after it on which the
   customer ordered, the orders and net revenue (offset = whole days after, rounded up, 1 to 90): an order counts
   when exposed < placed_at <= exposed + W days.
3. **Per day and group.** `DailyWorkflowLift` / `DailyCampaignLift` (see `models.LiftDay`): per day of exposure and
   group, the exposures, and per offset the converters, orders, revenue and the increments of squared revenue.
   A report over any period and window W sums offsets 1…W of the period's days: at most 91 rows per day and group.

What a refresh recomputes: exposures changed since the previous refresh (runs by `updated_at`, codes by
`published_at`, holdout records by `held_out_at`), the day rows of every exposure whose 90-day horizon holds an
order changed since then (a new order, a refund, a cancellation), and then only the (workflow or campaign, day)
cells those touched — in chunks, a bounded number of queries per chunk.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Count, Min, OuterRef, Q, Subquery
from django.utils import timezone

from apps.automations.choices import HELD_OUT, RunKind, RunStatus, StepKind
from apps.automations.models import WorkflowRun, WorkflowRunStep
from apps.campaigns.models import CampaignHoldout, Code
from apps.customers.choices import OrderStatus
from apps.customers.models import Order

from .models import (
    CampaignConversion,
    CampaignConversionDay,
    DailyCampaignLift,
    DailyWorkflowLift,
    RunConversion,
    RunConversionDay,
)
from .periods import local_day

HORIZON_DAYS = 90  # the longest conversion window a report may ask for
HORIZON = timedelta(days=HORIZON_DAYS)
CHUNK = 5000
CELL_DAYS = 100  # days of one workflow or campaign recomputed per query
ZERO = Decimal("0.00")
DAY_SECONDS = 86_400

Cell = tuple[int, date | None]  # (workflow or campaign id, local day of the exposures)


def _audience() -> Q:
    return Q(kind=RunKind.EVENT, customer__isnull=False) & (~Q(status=RunStatus.SKIPPED) | Q(skip_reason=HELD_OUT))


# --- exposures --------------------------------------------------------------------------------------------


def _runs_write(run_ids: list[int], cells: set[Cell]) -> list[int]:
    """(Re)write the RunConversion rows of these runs and their exposure flags; returns the ids in the audience."""
    cells |= set(RunConversion.objects.filter(run_id__in=run_ids).values_list("workflow_id", "day"))
    split_step = (
        WorkflowRunStep.objects.filter(run_id=OuterRef("pk"), kind=StepKind.SPLIT).order_by("path").values("branch")[:1]
    )
    rows = [
        RunConversion(
            run_id=pk,
            workflow_id=workflow_id,
            customer_id=customer_id,
            created_at=created_at,
            day=local_day(created_at),
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
        update_fields=["workflow", "customer", "created_at", "day", "held_out", "branch"],
    )
    cells |= {(row.workflow_id, row.day) for row in rows if row.day is not None}
    _exposures_mark({(row.workflow_id, row.customer_id) for row in rows}, cells)
    return [row.run_id for row in rows]


def _exposures_mark(pairs: set[tuple[int, int]], cells: set[Cell]) -> None:
    """
    Recompute the exposure flag of every run of these (workflow, customer) pairs: a run is an exposure when the
    customer's previous exposure to the workflow started more than 90 days before it (or there is none).
    """
    if not pairs:
        return
    workflows = {workflow_id for workflow_id, _ in pairs}
    customers = {customer_id for _, customer_id in pairs}
    runs = (
        RunConversion.objects.filter(workflow_id__in=workflows, customer_id__in=customers)
        .order_by("workflow_id", "customer_id", "created_at", "run_id")
        .values_list("run_id", "workflow_id", "customer_id", "created_at", "day", "exposure")
    )
    changed: list[RunConversion] = []
    last: dict[tuple[int, int], datetime] = {}
    for run_id, workflow_id, customer_id, created_at, day, was in runs:
        if (workflow_id, customer_id) not in pairs:
            continue
        previous = last.get((workflow_id, customer_id))
        now_exposure = previous is None or created_at - previous > HORIZON
        if now_exposure:
            last[(workflow_id, customer_id)] = created_at
        if now_exposure != was:
            changed.append(RunConversion(run_id=run_id, exposure=now_exposure))
            cells.add((workflow_id, day))
    RunConversion.objects.bulk_update(changed, ["exposure"], batch_size=1000)


def _campaign_exposures_write(pairs: list[tuple[int, int]], cells: set[Cell]) -> list[int]:
    """(Re)write the CampaignConversion rows of these (campaign, customer) pairs; returns their ids."""
    campaigns = {campaign_id for campaign_id, _ in pairs}
    customers = {customer_id for _, customer_id in pairs}
    wanted = set(pairs)
    existing = CampaignConversion.objects.filter(campaign_id__in=campaigns, customer_id__in=customers)
    cells |= {(c, d) for c, cu, d in existing.values_list("campaign_id", "customer_id", "day") if (c, cu) in wanted}
    first: dict[tuple[int, int], tuple[datetime, bool]] = {}
    published = (
        Code.objects.filter(campaign_id__in=campaigns, customer_id__in=customers, published_at__isnull=False)
        .values("campaign_id", "customer_id")
        .annotate(first=Min("published_at"))
        .values_list("campaign_id", "customer_id", "first")
        .order_by()
    )
    for campaign_id, customer_id, moment in published:
        if (campaign_id, customer_id) in wanted:
            first[(campaign_id, customer_id)] = (moment, False)
    for campaign_id, customer_id, moment in CampaignHoldout.objects.filter(
        campaign_id__in=campaigns, customer_id__in=customers
    ).values_list("campaign_id", "customer_id", "held_out_at"):
        key = (campaign_id, customer_id)
        if key in wanted and (key not in first or moment < first[key][0]):
            first[key] = (moment, True)
    rows = [
        CampaignConversion(
            campaign_id=campaign_id,
            customer_id=customer_id,
            created_at=moment,
            day=local_day(moment),
            held_out=held,
        )
        for (campaign_id, customer_id), (moment, held) in first.items()
    ]
    gone = [pair for pair in wanted if pair not in first]
    for campaign_id, customer_id in gone:
        existing.filter(campaign_id=campaign_id, customer_id=customer_id).delete()
    CampaignConversion.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["campaign", "customer"],
        update_fields=["created_at", "day", "held_out"],
    )
    cells |= {(row.campaign_id, row.day) for row in rows}
    return [
        pk
        for pk, campaign_id, customer_id in existing.values_list("pk", "campaign_id", "customer_id")
        if (campaign_id, customer_id) in first
    ]


# --- the days after each exposure -------------------------------------------------------------------------

# PostgreSQL does it in one statement per chunk (the orders' (customer, placed_at) index per exposure); elsewhere
# the rows are computed in Python from one orders query per chunk. Both give the same rows (tested on both).
DAYS_SQL = """
INSERT INTO {days} (conversion_id, "offset", orders, revenue)
SELECT r.{pk}, CEIL(EXTRACT(EPOCH FROM (o.placed_at - r.created_at)) / 86400)::int AS day_after, COUNT(*),
       COALESCE(SUM(o.total_shop - COALESCE(o.refunded_total_shop, 0)), 0)
FROM {source} r
JOIN customers_order o ON o.customer_id = r.customer_id AND o.placed_at > r.created_at
     AND o.placed_at <= r.created_at + make_interval(days => %s)
WHERE {where}o.status <> %s
GROUP BY r.{pk}, day_after
"""


def _days_write(source: type[models.Model], days: type[models.Model], ids: list[int]) -> int:
    """Recompute the day rows of these exposures from their customers' orders within the horizon. Returns rows."""
    day_rows: Any = days.objects  # type: ignore[attr-defined]
    exposures: Any = source.objects  # type: ignore[attr-defined]
    if connection.vendor == "postgresql":
        day_rows.filter(conversion_id__in=ids).delete()
        pk = source._meta.pk.column
        statement = DAYS_SQL.format(
            days=days._meta.db_table, source=source._meta.db_table, pk=pk, where=f"r.{pk} = ANY(%s) AND "
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, [HORIZON_DAYS, list(ids), OrderStatus.CANCELLED])
            return cursor.rowcount
    runs = list(exposures.filter(pk__in=ids).values_list("pk", "customer_id", "created_at"))
    if not runs:
        day_rows.filter(conversion_id__in=ids).delete()
        return 0
    orders: dict[int, list[tuple[datetime, Decimal | None]]] = defaultdict(list)
    for customer_id, placed_at, total, refunded in (
        Order.objects.filter(
            customer_id__in={customer_id for _, customer_id, _ in runs},
            placed_at__gt=min(created for _, _, created in runs),
            placed_at__lte=max(created for _, _, created in runs) + HORIZON,
        )
        .exclude(status=OrderStatus.CANCELLED)
        .values_list("customer_id", "placed_at", "total_shop", "refunded_total_shop")
        .order_by()
    ):
        # An order without a known shop amount converts but adds no revenue (as in every report).
        orders[customer_id].append((placed_at, None if total is None else total - (refunded or ZERO)))
    rows = []
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
            days(conversion_id=run_id, offset=offset, orders=count, revenue=revenue)
            for offset, (count, revenue) in per_day.items()
        ]
    day_rows.filter(conversion_id__in=ids).delete()
    day_rows.bulk_create(rows, batch_size=5000)
    return len(rows)


def _touched_customers(since: datetime) -> dict[int, tuple[datetime, datetime]]:
    """Customers with an order changed since `since` (new, refunded, cancelled): earliest and latest placed_at."""
    touched: dict[int, tuple[datetime, datetime]] = {}
    # A UNION of two indexed reads (orders.updated_at, refunds.created_at): one OR across the refunds join could
    # use neither index and read every order with its refunds (1.5 s at 10M orders, at every refresh).
    updated = Order.objects.filter(updated_at__gte=since).values_list("customer_id", "placed_at").order_by()
    refunded = Order.objects.filter(refunds__created_at__gte=since).values_list("customer_id", "placed_at").order_by()
    for customer_id, placed_at in updated.union(refunded):
        if customer_id is None:
            continue
        low, high = touched.get(customer_id, (placed_at, placed_at))
        touched[customer_id] = (min(low, placed_at), max(high, placed_at))
    return touched


def _orders_follow(
    touched: dict[int, tuple[datetime, datetime]],
    source: type[models.Model],
    days: type[models.Model],
    owner: str,
    cells: set[Cell],
) -> int:
    """Recompute the day rows of the exposures whose horizon holds one of these customers' changed orders."""
    exposures: Any = source.objects  # type: ignore[attr-defined]
    customers = sorted(touched)
    recomputed = 0
    for start in range(0, len(customers), CHUNK):
        chunk = customers[start : start + CHUNK]
        low = min(touched[customer][0] for customer in chunk) - HORIZON
        high = max(touched[customer][1] for customer in chunk)
        affected = list(
            exposures.filter(customer_id__in=chunk, created_at__gte=low, created_at__lt=high).values_list(
                "pk", owner, "day"
            )
        )
        cells |= {(owner_id, day) for _, owner_id, day in affected if day is not None}
        ids = [pk for pk, _, _ in affected]
        for index in range(0, len(ids), CHUNK):
            with transaction.atomic():
                _days_write(source, days, ids[index : index + CHUNK])
        recomputed += len(ids)
    return recomputed


# --- per day and group ------------------------------------------------------------------------------------


def _cells_rows(exposures: Any, day_rows: Any, *, branch: bool, make: Any) -> list[models.Model]:
    """The LiftDay rows of these exposures (one cell set of one workflow or campaign), computed exactly."""
    keyed: dict[tuple[date, bool, str, int], list] = {}

    def cell(day: date, held: bool, name: str, offset: int) -> list:
        return keyed.setdefault((day, held, name, offset), [0, 0, 0, ZERO, 0.0])

    fields = ["day", "held_out", *(["branch"] if branch else [])]
    for row in exposures.values(*fields).annotate(n=Count("pk")).order_by():
        cell(row["day"], row["held_out"], row.get("branch", ""), 0)[0] += row["n"]
    prefix = ["conversion__day", "conversion__held_out", *(["conversion__branch"] if branch else [])]
    current, cumulative = None, 0.0
    for values in (
        day_rows.filter(conversion__in=exposures)
        .order_by("conversion_id", "offset")
        .values_list("conversion_id", *prefix, "offset", "orders", "revenue")
        .iterator(chunk_size=5000)
    ):
        conversion_id, day, held = values[0], values[1], values[2]
        name = values[3] if branch else ""
        offset, orders, revenue = values[-3], values[-2], values[-1]
        target = cell(day, held, name, offset)
        if conversion_id != current:
            current, cumulative = conversion_id, 0.0
            target[1] += 1  # the exposure's first day with an order
        money = float(revenue)
        target[2] += orders
        target[3] += revenue
        target[4] += money * (2 * cumulative + money)  # R(N)² - R(N-1)²
        cumulative += money
    return [
        make(
            day=day,
            held_out=held,
            branch=name,
            offset=offset,
            exposures=counts[0],
            converters=counts[1],
            orders=counts[2],
            revenue=counts[3],
            revenue_squares=counts[4],
        )
        for (day, held, name, offset), counts in keyed.items()
    ]


def _cells_write(cells: Iterable[Cell] | None, *, campaign: bool) -> int:
    """Replace the LiftDay rows of these (owner, day) cells (None: every cell). Returns the rows written."""
    if cells is not None and connection.vendor == "postgresql":
        return _cells_rebuild(campaign=campaign, cells=cells)  # the same rows, set-based
    source: Any = CampaignConversion if campaign else RunConversion
    days: Any = CampaignConversionDay if campaign else RunConversionDay
    target: Any = DailyCampaignLift if campaign else DailyWorkflowLift
    owner = "campaign_id" if campaign else "workflow_id"
    by_owner: dict[int, set[date]] = defaultdict(set)
    if cells is None:
        target.objects.all().delete()
        for owner_id, day in source.objects.values_list(owner, "day").distinct().order_by():
            if day is not None:
                by_owner[owner_id].add(day)
    else:
        for owner_id, day in cells:
            if day is not None:
                by_owner[owner_id].add(day)
    written = 0
    for owner_id, owner_days in by_owner.items():
        ordered = sorted(owner_days)
        for start in range(0, len(ordered), CELL_DAYS):
            chunk = ordered[start : start + CELL_DAYS]
            exposures = source.objects.filter(**{owner: owner_id, "day__in": chunk})
            if not campaign:
                exposures = exposures.filter(exposure=True)
            rows = _cells_rows(
                exposures,
                days.objects,
                branch=not campaign,
                make=lambda owner_id=owner_id, **fields: target(**{owner: owner_id}, **fields),
            )
            with transaction.atomic():
                target.objects.filter(**{owner: owner_id, "day__in": chunk}).delete()
                target.objects.bulk_create(rows, batch_size=5000)
            written += len(rows)
    return written


# --- the refresh ------------------------------------------------------------------------------------------


def conversions_refresh(*, since: datetime | None) -> int:
    """
    Bring the workflows' and campaigns' lift rollups up to date with the runs, codes, holdouts and orders changed
    since `since` (None: rebuild them whole). Returns how many exposures had their day rows recomputed. Runs inside
    the caller's transaction (the rollups' lock).
    """
    touched = None if since is None else _touched_customers(since)
    return _workflows_refresh(since, touched) + _campaigns_refresh(since, touched)


# The full rebuild on PostgreSQL, set-based (`_workflows_rebuild`): one pass over the audience's runs in (workflow,
# customer, time) order finding the exposures (a chain: a run is an exposure when the previous *exposure* is more
# than 90 days before it, which no window function expresses), then one INSERT … SELECT of every run with its first
# split step's branch (a look-up on the step index) and its exposure flag (a hash join with the exposures' ids),
# and one INSERT … SELECT … GROUP BY of every run's days after. The incremental refresh writes the same rows chunk
# by chunk (tested equal, row for row).
RUNS_REBUILD_SQL = """
INSERT INTO {conversions} (run_id, workflow_id, customer_id, created_at, day, held_out, branch, exposure)
SELECT r.id, r.workflow_id, r.customer_id, r.created_at, (r.created_at AT TIME ZONE %s)::date, r.status = %s,
       COALESCE(LEFT((SELECT s.branch FROM {steps} s WHERE s.run_id = r.id AND s.kind = %s
                      ORDER BY s.path LIMIT 1), 40), ''),
       e.id IS NOT NULL
FROM {runs} r LEFT JOIN unnest(%s::bigint[]) AS e(id) ON e.id = r.id
WHERE {audience}
"""


def _workflows_rebuild() -> int:
    """Every workflow's exposures and their days after, from the raw runs and orders (PostgreSQL; see above)."""
    audience = WorkflowRun.objects.filter(_audience())
    exposures: list[int] = []
    current: tuple[int, int] | None = None
    last: datetime | None = None
    for run_id, workflow_id, customer_id, created_at in (
        audience.order_by("workflow_id", "customer_id", "created_at", "pk")
        .values_list("pk", "workflow_id", "customer_id", "created_at")
        .iterator(chunk_size=20_000)
    ):
        if (workflow_id, customer_id) != current:
            current, last = (workflow_id, customer_id), None
        if last is None or created_at - last > HORIZON:
            last = created_at
            exposures.append(run_id)
    conversions, days = RunConversion._meta.db_table, RunConversionDay._meta.db_table
    runs = WorkflowRun._meta.db_table
    # The audience's WHERE clause as the ORM writes it (one definition of the audience), on the runs aliased r.
    where, where_params = audience.values("pk").query.get_compiler(connection=connection).compile(audience.query.where)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {days}")  # noqa: S608 - table names from model meta
        cursor.execute(f"DELETE FROM {conversions}")  # noqa: S608
        cursor.execute(
            RUNS_REBUILD_SQL.format(
                conversions=conversions,
                steps=WorkflowRunStep._meta.db_table,
                runs=runs,
                audience=where.replace(f'"{runs}".', "r."),
            ),
            [
                timezone.get_current_timezone_name(),
                RunStatus.SKIPPED.value,
                StepKind.SPLIT.value,
                exposures,
                *where_params,
            ],
        )
        written = cursor.rowcount
        statement = DAYS_SQL.format(days=days, source=conversions, pk="run_id", where="")
        cursor.execute(statement, [HORIZON_DAYS, OrderStatus.CANCELLED.value])
    return written


# Every LiftDay row of a table at once (the full rebuild on PostgreSQL): offset 0 the exposures per day and group,
# offset N the day rows, with each exposure's first day with an order (`converters`) and the increments of its
# squared revenue R(N)² - R(N-1)² from a running sum per exposure — what `_cells_rows` computes in Python.
CELLS_REBUILD_SQL = """
INSERT INTO {target} ({owner}, day, held_out, branch, "offset", exposures, converters, orders, revenue, revenue_squares)
SELECT c.{owner}, c.day, c.held_out, {branch}, 0, COUNT(*), 0, 0, 0, 0
FROM {source} c WHERE c.day IS NOT NULL{exposure}{cells}
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT x.owner, x.day, x.held_out, x.branch, x."offset", 0, SUM(x.first), SUM(x.orders), SUM(x.revenue),
       SUM(x.squares)::double precision
FROM (SELECT c.{owner} AS owner, c.day, c.held_out, {branch} AS branch, d."offset", d.orders, d.revenue,
             CASE WHEN ROW_NUMBER() OVER w = 1 THEN 1 ELSE 0 END AS first,
             (SUM(d.revenue) OVER w) ^ 2 - (SUM(d.revenue) OVER w - d.revenue) ^ 2 AS squares
      FROM {source} c JOIN {days} d ON d.conversion_id = c.{pk}
      WHERE c.day IS NOT NULL{exposure}{cells}
      WINDOW w AS (PARTITION BY d.conversion_id ORDER BY d."offset")) AS x
GROUP BY 1, 2, 3, 4, 5
"""


def _cells_rebuild(*, campaign: bool, cells: Iterable[Cell] | None = None) -> int:
    """
    Replace the LiftDay rows of the workflows (or campaigns) in one statement (PostgreSQL; see above): every row,
    or only those of these (owner, day) cells — what the incremental refresh recomputes, the cells given as two
    array parameters (at 1M customers the refresh after 1,000 new orders spent 2.2 s on them in Python).
    """
    source: Any = CampaignConversion if campaign else RunConversion
    days: Any = CampaignConversionDay if campaign else RunConversionDay
    target: Any = DailyCampaignLift if campaign else DailyWorkflowLift
    owner = "campaign_id" if campaign else "workflow_id"
    restrict = ""
    params: list[Any] = []
    if cells is not None:
        pairs = sorted({(owner_id, day) for owner_id, day in cells if day is not None})
        if not pairs:
            return 0
        restrict = f" AND (c.{owner}, c.day) IN (SELECT * FROM unnest(%s::bigint[], %s::date[]))"  # noqa: S608
        params = [[owner_id for owner_id, _ in pairs], [day for _, day in pairs]]
    statement = CELLS_REBUILD_SQL.format(
        target=target._meta.db_table,
        owner=owner,
        branch="''" if campaign else "c.branch",
        source=source._meta.db_table,
        days=days._meta.db_table,
        pk=source._meta.pk.column,
        exposure="" if campaign else " AND c.exposure",
        cells=restrict,
    )
    table = target._meta.db_table
    with connection.cursor() as cursor:
        if cells is None:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - table name from model meta
        else:
            cursor.execute(
                f"DELETE FROM {table} AS c WHERE TRUE{restrict}",  # noqa: S608 - table name from model meta
                params,
            )
        cursor.execute(statement, params * 2)
        return cursor.rowcount


def _workflows_refresh(since: datetime | None, touched: dict[int, tuple[datetime, datetime]] | None) -> int:
    cells: set[Cell] = set()
    if since is None and connection.vendor == "postgresql":
        recomputed = _workflows_rebuild()
        _cells_rebuild(campaign=False)
        return recomputed
    if since is None:
        RunConversion.objects.all().delete()
        changed = WorkflowRun.objects.filter(_audience())
    else:
        changed = WorkflowRun.objects.filter(updated_at__gte=since)
    run_ids = list(changed.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(run_ids), CHUNK):
        chunk = run_ids[start : start + CHUNK]
        with transaction.atomic():
            _days_write(RunConversion, RunConversionDay, _runs_write(chunk, cells))
    recomputed = len(run_ids)
    if touched is None:
        _cells_write(None, campaign=False)
        return recomputed
    recomputed += _orders_follow(touched, RunConversion, RunConversionDay, "workflow_id", cells)
    _cells_write(cells, campaign=False)
    return recomputed


def _campaigns_refresh(since: datetime | None, touched: dict[int, tuple[datetime, datetime]] | None) -> int:
    cells: set[Cell] = set()
    codes = Code.objects.filter(customer__isnull=False, published_at__isnull=False)
    holdouts = CampaignHoldout.objects.all()
    if since is None:
        CampaignConversion.objects.all().delete()
    else:
        codes = codes.filter(published_at__gte=since)
        holdouts = holdouts.filter(held_out_at__gte=since)
    pairs = sorted(
        set(codes.values_list("campaign_id", "customer_id").distinct().order_by())
        | set(holdouts.values_list("campaign_id", "customer_id"))
    )
    for start in range(0, len(pairs), CHUNK):
        with transaction.atomic():
            ids = _campaign_exposures_write(pairs[start : start + CHUNK], cells)
            _days_write(CampaignConversion, CampaignConversionDay, ids)
    recomputed = len(pairs)
    if touched is None:
        if connection.vendor == "postgresql":
            _cells_rebuild(campaign=True)
        else:
            _cells_write(None, campaign=True)
        return recomputed
    recomputed += _orders_follow(touched, CampaignConversion, CampaignConversionDay, "campaign_id", cells)
    _cells_write(cells, campaign=True)
    return recomputed
