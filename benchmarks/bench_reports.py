"""
Reports benchmark (PostgreSQL). Not a test: prints each report's time and the rollup refresh times.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/reports_bench?conn_max_age=600"
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py generate_data --customers 1000000 --orders 10000000 --seed 1
    .venv/bin/python benchmarks/bench_reports.py --prepare      # members, ledger entries, runs, then a rebuild
    .venv/bin/python benchmarks/bench_reports.py                # measure again on the same data
    .venv/bin/python benchmarks/bench_reports.py --generate 200000 2000000 --prepare   # data by SQL, minutes not hours
    .venv/bin/python benchmarks/bench_reports.py --rebuild      # time reports_rebuild only

`--prepare` adds what generate_data does not make, set-based: memberships for 40 % of the customers (joined
before their first order), one earning ledger entry per member order (pending → points), an expiring lot per
member, and `--runs` workflow runs over three workflows (one with an A/B split and a holdout, whose runs carry
their split step rows). Then it times `reports_rebuild` (every day from the raw tables).

Measured (best of `--repeat`):
  - every report over the last 30 days and the last 365 days (dashboard, loyalty, campaigns, workflows,
    one workflow's lift, cohorts), as the page and the API build them;
  - the incremental refresh with nothing changed, after a late refund of a 300-day-old order (one day
    recomputed), and after 1,000 new orders today.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.dev")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.automations.models import Workflow  # noqa: E402
from apps.customers import services as customer_services  # noqa: E402
from apps.customers.models import Customer, Order  # noqa: E402
from apps.loyalty.models import LedgerEntry, Membership, Program  # noqa: E402
from apps.reports import selectors, services  # noqa: E402
from apps.reports.lift import workflows_report  # noqa: E402
from apps.reports.models import DailyWorkflowLift, RunConversionDay  # noqa: E402


def load() -> str:
    """The load average beside every figure: the machine is shared (2 cores, several helpers)."""
    one, five, fifteen = os.getloadavg()
    return f"[load {one:.1f} {five:.1f} {fifteen:.1f}]"


def best_of(repeats, func):
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        timings.append(time.perf_counter() - started)
    return min(timings), statistics.median(timings), result


def sql(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def generate(customers: int, orders: int) -> None:
    """
    Customers and orders made by SQL (`generate_data` makes about 100k orders per 10 minutes on the loaded machine):
    orders spread over the last 730 days, 2 % cancelled, 4 % partly refunded, first/last order dates and counts
    set on the customers. Only for an empty database.
    """
    started = time.perf_counter()
    sql(
        """
        INSERT INTO customers_customer (external_id, email, phone, first_name, last_name, country, preferred_currency,
               state, accepts_marketing, attributes, orders_count, total_spent, refunded_total, created_at, updated_at,
               email_domain, signup_device, status, status_reason)
        SELECT 'g' || g, 'g' || g || '@example.com', '', 'G', 'C' || g, 'US', 'USD', 'registered', true, '{}', 0, 0, 0,
               now() - interval '800 days' + (g %% 700) * interval '1 day', now(), 'example.com', '', 'active', ''
        FROM generate_series(1, %s) g
        """,
        [customers],
    )
    first = Customer.objects.order_by("pk").values_list("pk", flat=True).first()
    sql(
        """
        INSERT INTO customers_order (customer_id, currency, subtotal, discount_total, shipping_total, tax_total, total,
               refunded_total, shop_currency, exchange_rate, subtotal_shop, discount_total_shop, shipping_total_shop,
               tax_total_shop, total_shop, refunded_total_shop, channel, shipping_country, status, placed_at,
               created_at, updated_at, checkout_session, discount_codes)
        SELECT %s + (g::bigint * 7919) %% %s, 'USD', t, 0, 0, 0, t, r, 'USD', 1, t, 0, 0, 0, t, r, 'online', 'US',
               CASE WHEN g %% 50 = 0 THEN 'cancelled' ELSE 'paid' END, p, p, p, '', '[]'::jsonb
        FROM (SELECT g, (10 + g %% 190)::numeric(12, 2) AS t,
                     CASE WHEN g %% 25 = 0 THEN 5 ELSE 0 END::numeric(12, 2) AS r,
                     now() - (g %% 730) * interval '1 day' - (g %% 1440) * interval '1 minute' AS p
              FROM generate_series(1, %s) g) AS o
        """,
        [first, customers, orders],
    )
    sql(
        """
        UPDATE customers_customer c SET orders_count = s.n, total_spent = s.total, first_order_at = s.first,
               last_order_at = s.last
        FROM (SELECT customer_id, COUNT(*) AS n, SUM(total_shop) AS total, MIN(placed_at) AS first,
                     MAX(placed_at) AS last
              FROM customers_order WHERE status <> 'cancelled' GROUP BY customer_id) AS s
        WHERE s.customer_id = c.id
        """
    )
    print(f"generated {customers:,} customers, {orders:,} orders in {time.perf_counter() - started:.1f} s {load()}")


def prepare(runs: int) -> None:
    started = time.perf_counter()
    program, _ = Program.objects.get_or_create(slug="bench", defaults={"name": "Bench club", "points_per_unit": 1})
    sql(
        """
        INSERT INTO loyalty_membership (program_id, customer_id, joined_at, referral_code, last_activity_at,
                                        cockpit_nonce, referral_shows_name)
        SELECT %s, c.id, COALESCE(c.first_order_at, c.created_at) - interval '1 day', 'B' || c.id,
               COALESCE(c.last_order_at, c.created_at), md5(c.id::text), false
        FROM customers_customer c
        WHERE c.id %% 5 < 2
        ON CONFLICT DO NOTHING
        """,
        [program.pk],
    )
    members = Membership.objects.count()
    print(f"memberships: {members:,} in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    added = (
        0
        if LedgerEntry.objects.filter(reason="bench").exists()
        else sql(
            """
        INSERT INTO loyalty_ledgerentry (membership_id, kind, active_delta, pending_delta, debt_delta, active_after,
                                         reason, cause, created_at)
        SELECT m.id, 'earn', floor(o.total_shop)::int, 0, 0, 0, 'bench', 'order:' || o.id, o.placed_at
        FROM customers_order o JOIN loyalty_membership m ON m.customer_id = o.customer_id
        WHERE o.total_shop IS NOT NULL AND o.status <> 'cancelled'
        """
        )
    )
    print(f"ledger entries: {added:,} in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    sql(
        """
        INSERT INTO loyalty_pointlot (membership_id, amount, remaining, reversed_amount, status, source_type,
                                      source_key, reason, cause, created_at, activates_at, expires_at, held)
        SELECT m.id, 100, 100, 0, 'active', 'admin', 'bench:' || m.id, 'bench', '', now(), now(),
               now() + (m.id %% 365) * interval '1 day', false
        FROM loyalty_membership m
        ON CONFLICT DO NOTHING
        """,
        [],
    )
    print(f"lots in {time.perf_counter() - started:.1f} s", flush=True)
    steps = [
        {"id": "ab", "split": [{"name": "A", "percent": 50, "steps": []}, {"name": "B", "percent": 50, "steps": []}]}
    ]
    workflows = []
    for name in ("Bench A/B", "Bench welcome", "Bench win-back"):
        workflow, _ = Workflow.objects.get_or_create(
            name=name,
            defaults={
                "trigger": "event.custom",
                "definition": {"schema": 1, "trigger": {"event": "event.custom"}, "steps": steps},
                "holdout_percent": 10,
            },
        )
        workflows.append(workflow)
    started = time.perf_counter()
    first = Customer.objects.order_by("pk").values_list("pk", flat=True).first() or 0
    last = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    sql(
        """
        INSERT INTO automations_workflowrun (workflow_id, kind, customer_id, status, skip_reason, depth, attempts,
               max_attempts, resume_step, context, error, slot, progress, created_at, updated_at)
        SELECT (ARRAY[%s, %s, %s])[1 + g %% 3], 'event', %s + (g::bigint * 7919) %% %s,
               CASE WHEN g %% 10 = 0 THEN 'skipped' WHEN g %% 37 = 0 THEN 'failed' ELSE 'succeeded' END,
               CASE WHEN g %% 10 = 0 THEN 'held out' ELSE '' END, 0, 1, 5, '', '{}', '', '', '{}',
               now() - (g %% 365) * interval '1 day', now() - (g %% 365) * interval '1 day'
        FROM generate_series(1, %s) g
        """,
        [workflows[0].pk, workflows[1].pk, workflows[2].pk, first, last - first + 1, runs],
    )
    sql(
        """
        INSERT INTO automations_workflowrunstep (run_id, step_id, path, kind, status, branch, inputs, outcome, error,
                                                 started_at)
        SELECT r.id, 'ab', 'steps[0]', 'split', 'succeeded', CASE WHEN r.customer_id %% 2 = 0 THEN 'A' ELSE 'B' END,
               '{}', '{}', '', r.created_at
        FROM automations_workflowrun r WHERE r.workflow_id = %s AND r.status <> 'skipped'
        ON CONFLICT DO NOTHING
        """,
        [workflows[0].pk],
    )
    print(f"workflow runs: {runs:,} in {time.perf_counter() - started:.1f} s", flush=True)
    sql("ANALYZE")
    started = time.perf_counter()
    result = services.rollups_rebuild()
    print(
        f"reports_rebuild (full): {len(result.days)} days in {time.perf_counter() - started:.1f} s {load()}", flush=True
    )
    print(
        f"lift rollups: {RunConversionDay.objects.count():,} day rows after the runs,"
        f" {DailyWorkflowLift.objects.count():,} per-day lift rows {load()}",
        flush=True,
    )


def measure(repeats: int, *, reports_only: bool = False) -> None:
    today = timezone.localdate()
    counts = {
        "customers": Customer.objects.count(),
        "orders": Order.objects.count(),
    }
    print(f"data: {counts['customers']:,} customers, {counts['orders']:,} orders", flush=True)
    workflow = Workflow.objects.filter(name="Bench A/B").first()
    for days in (30, 365):
        period = selectors.Period(today - timedelta(days=days - 1), today)
        reports = {
            "dashboard": lambda p=period: selectors.dashboard(p).as_json(),
            "loyalty": lambda p=period: selectors.loyalty_report(p).as_json(),
            "campaigns": lambda p=period: selectors.campaigns_report(p).as_json(),
            "workflows": lambda p=period: workflows_report(p).as_json(),
            "cohorts": lambda p=period: selectors.cohorts_report(p).as_json(),
        }
        if workflow is not None:
            reports["one workflow + lift"] = lambda p=period: workflows_report(p, workflow, 7).as_json()
        for name, build in reports.items():
            best, median, _ = best_of(repeats, build)
            print(
                f"{days:>3} days  {name:<22} best {best * 1000:8.1f} ms  median {median * 1000:8.1f} ms {load()}",
                flush=True,
            )

    if reports_only:
        return
    # The refresh re-reads the last 10 minutes before the previous one (transactions open then); the data was
    # just written, so measure without that overlap to see exactly which days a change touches.
    services.WATERMARK_OVERLAP = timedelta(0)
    services.rollups_refresh()
    best, median, result = best_of(repeats, services.rollups_refresh)
    print(
        f"refresh, nothing changed: best {best * 1000:.0f} ms median {median * 1000:.0f} ms ({len(result.days)} days)"
        f" {load()}"
    )
    old = (
        Order.objects.filter(placed_at__lt=timezone.now() - timedelta(days=300), refunded_total=0)
        .exclude(status="cancelled")
        .order_by("placed_at")
        .first()
    )
    if old is not None:
        customer_services.refund_create(order=old, amount="1.00")
        started = time.perf_counter()
        result = services.rollups_refresh()
        print(
            f"refresh after a late refund of an order of {old.placed_at:%Y-%m-%d}:"
            f" {(time.perf_counter() - started) * 1000:.0f} ms, days recomputed {result.days} {load()}",
            flush=True,
        )
    customers = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:1000])
    started = time.perf_counter()
    sql(
        """
        INSERT INTO customers_order (customer_id, currency, subtotal, discount_total, shipping_total, tax_total, total,
               refunded_total, shop_currency, exchange_rate, subtotal_shop, discount_total_shop, shipping_total_shop,
               tax_total_shop, total_shop, refunded_total_shop, channel, shipping_country, status, placed_at,
               created_at, updated_at, checkout_session, discount_codes)
        SELECT c, 'USD', 20, 0, 0, 0, 20, 0, 'USD', 1, 20, 0, 0, 0, 20, 0, 'online', 'US', 'paid', now(), now(), now(),
               '', '[]'::jsonb
        FROM unnest(%s::int[]) AS c
        """,
        [customers],
    )
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    result = services.rollups_refresh()
    print(
        f"refresh after 1,000 new orders today: {(time.perf_counter() - started) * 1000:.0f} ms"
        f" (insert {inserted * 1000:.0f} ms), days recomputed {result.days} {load()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help="add members, ledger, runs, then rebuild")
    parser.add_argument("--runs", type=int, default=300_000)
    parser.add_argument(
        "--generate", nargs=2, type=int, metavar=("CUSTOMERS", "ORDERS"), help="make the data by SQL (empty database)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reports-only", action="store_true", help="measure the reports, not the refreshes")
    parser.add_argument("--rebuild", action="store_true", help="time reports_rebuild (and stop)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run this on PostgreSQL (set DATABASE_URL).")
    if args.generate:
        generate(*args.generate)
    if args.prepare:
        prepare(args.runs)
    if args.rebuild:
        started = time.perf_counter()
        result = services.rollups_rebuild()
        print(f"reports_rebuild (full): {len(result.days)} days in {time.perf_counter() - started:.1f} s {load()}")
        return
    measure(args.repeat, reports_only=args.reports_only)


if __name__ == "__main__":
    main()
