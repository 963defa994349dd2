"""
Bulk audience and bulk tagging benchmark (PostgreSQL). Not a test: prints figures and ratios.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/bulk"
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py generate_data --customers 100000 --orders 1000000 --seed 1
    .venv/bin/python benchmarks/bench_bulk.py                   # measure on whatever data is there
    # or let the script generate it first:
    .venv/bin/python benchmarks/bench_bulk.py --generate --customers 1000000 --orders 10000000

Measured, on the same data in one run:
  1. the audience "no order in the last 30 days and total spent >= $500" compiled by the condition compiler
     vs (a) a hand-written SQL query giving the same answer and (b) a per-customer ORM loop over a 20k sample,
     scaled up to all customers;
  2. tagging 100k matches the way a bulk run does (chunks of 5,000: one INSERT ... SELECT ... ON CONFLICT
     per chunk + its audit insert) vs one plain INSERT ... SELECT of the same rows.
Every write is rolled back, so the script can be re-run on the same data.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.dev")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.automations import bulk  # noqa: E402
from apps.automations.gallery import inactive_high_value_audience  # noqa: E402
from apps.customers.choices import OrderStatus  # noqa: E402
from apps.customers.models import Customer, Order  # noqa: E402
from apps.tagging import services as tag_services  # noqa: E402
from apps.tagging.models import CustomerTag, Tag  # noqa: E402

DAYS = 30
MIN_SPENT = Decimal("500")


def best_of(repeats: int, func):
    """(best seconds, median seconds, result of the last call)."""
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        timings.append(time.perf_counter() - started)
    return min(timings), statistics.median(timings), result


def compiled_audience(now):
    from loyalty_site.lib.conditions import condition_compile

    condition = inactive_high_value_audience(DAYS, MIN_SPENT)
    return Customer.objects.filter(condition_compile(condition, now=now)).order_by()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generate", action="store_true", help="Run generate_data first.")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=20_000, help="Customers in the ORM-loop sample.")
    parser.add_argument("--tag-rows", type=int, default=100_000, help="Matches to tag.")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-loop", action="store_true", help="Skip the (slow) per-customer ORM loop.")
    parser.add_argument("--full-run", action="store_true", help="Also time a whole bulk run over all customers.")
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit("bench_bulk.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    if args.generate:
        call_command("generate_data", customers=args.customers, orders=args.orders, seed=args.seed)

    total_customers = Customer.objects.count()
    total_orders = Order.objects.count()
    print(f"data: {total_customers:,} customers, {total_orders:,} orders")
    now = timezone.now()
    cutoff = now - timedelta(days=DAYS)

    # 1. The audience ------------------------------------------------------------------------------------
    queryset = compiled_audience(now)
    compiled_sql = str(queryset.values("pk").query)
    print(f"\ncompiled SQL: {compiled_sql}")

    def run_compiled():
        # The compiler's SQL, fetched the same way as the hand-written one.
        sql, params = compiled_audience(now).values_list("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [row[0] for row in cursor.fetchall()]

    def run_compiled_orm():
        return list(compiled_audience(now).values_list("pk", flat=True))

    hand_sql = "SELECT id FROM customers_customer WHERE last_order_at < %s AND total_spent >= %s"

    def run_hand():
        with connection.cursor() as cursor:
            cursor.execute(hand_sql, [cutoff, MIN_SPENT])
            return [row[0] for row in cursor.fetchall()]

    run_compiled()  # warm the cache for both
    hand_times, comp_times = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        hand_best, _, hand_ids = best_of(1, run_hand)
        comp_best, _, comp_ids = best_of(1, run_compiled)
        hand_times.append(hand_best)
        comp_times.append(comp_best)
    hand_best, hand_median = min(hand_times), statistics.median(hand_times)
    comp_best, comp_median = min(comp_times), statistics.median(comp_times)
    assert sorted(hand_ids) == sorted(comp_ids), "the compiled audience and the hand-written SQL disagree"
    print(f"audience size: {len(comp_ids):,}")
    print(f"compiled audience : best {comp_best * 1000:9.1f} ms  median {comp_median * 1000:9.1f} ms")
    print(f"hand-written SQL  : best {hand_best * 1000:9.1f} ms  median {hand_median * 1000:9.1f} ms")
    print(f"ratio compiled / hand-written: {comp_best / hand_best:.2f}x  (target <= 1.5x)")
    orm_best, orm_median, orm_ids = best_of(args.repeats, run_compiled_orm)
    assert sorted(orm_ids) == sorted(hand_ids)
    print(
        f"compiled via ORM  : best {orm_best * 1000:9.1f} ms  median {orm_median * 1000:9.1f} ms  "
        f"(values_list, as a bulk chunk reads it; {orm_best / hand_best:.2f}x)"
    )

    # The same two queries counted server-side: no row transfer, only the plans differ.
    def count_compiled():
        return compiled_audience(now).count()

    def count_hand():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({hand_sql}) AS audience", [cutoff, MIN_SPENT])
            return cursor.fetchone()[0]

    count_times: dict[str, list[float]] = {"compiled": [], "hand": []}
    for _ in range(args.repeats):
        count_times["hand"].append(best_of(1, count_hand)[0])
        count_times["compiled"].append(best_of(1, count_compiled)[0])
    assert count_compiled() == count_hand() == len(comp_ids)
    count_comp, count_hand_best = min(count_times["compiled"]), min(count_times["hand"])
    print(
        f"server-side COUNT: compiled {count_comp * 1000:.1f} ms, hand-written {count_hand_best * 1000:.1f} ms, "
        f"ratio {count_comp / count_hand_best:.2f}x"
    )

    # (b) the per-customer ORM loop on a sample, scaled up.
    sample = list(Customer.objects.order_by("pk")[: 0 if args.skip_loop else args.sample])

    def run_loop():
        matched = []
        for customer in sample:
            recent = (
                Order.objects.filter(customer=customer, placed_at__gte=cutoff)
                .exclude(status=OrderStatus.CANCELLED)
                .exists()
            )
            if not recent and customer.total_spent >= MIN_SPENT and customer.last_order_at is not None:
                matched.append(customer.pk)
        return matched

    loop_seconds, _, loop_ids = best_of(1, run_loop)
    if not sample:
        loop_seconds = float("nan")
    sample_ids = {customer.pk for customer in sample}
    assert sorted(loop_ids) == sorted(pk for pk in comp_ids if pk in sample_ids), "the ORM loop disagrees"
    scaled = loop_seconds * total_customers / max(1, len(sample))
    print(
        f"ORM loop          : {loop_seconds:.2f} s for {len(sample):,} customers, "
        f"scaled to {total_customers:,}: {scaled:.1f} s"
    )
    print(f"speed-up compiled vs loop: {scaled / comp_best:,.0f}x  (target >= 100x)")

    # 2. Tagging 100k matches ----------------------------------------------------------------------------
    targets = sorted(comp_ids)[: args.tag_rows]
    if len(targets) < args.tag_rows:
        targets = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[: args.tag_rows])
    print(f"\ntagging {len(targets):,} customers")
    tag_name = "Bench inactive high-value"
    with transaction.atomic():
        tag = Tag.objects.create(name=tag_name)
        low, high = targets[0], targets[-1]

        def run_plain():
            with transaction.atomic(), connection.cursor() as cursor:
                started = time.perf_counter()
                cursor.execute(
                    "INSERT INTO tagging_customertag (customer_id, tag_id, source, source_ref, added_by_id, added_at) "
                    "SELECT id, %s, 'workflow', 'bench', NULL, now() FROM customers_customer "
                    "WHERE id = ANY(%s)",
                    [tag.pk, targets],
                )
                elapsed = time.perf_counter() - started
                assert cursor.rowcount == len(targets)
                transaction.set_rollback(True)
            return elapsed

        def run_bulk():
            with transaction.atomic():
                started = time.perf_counter()
                added = 0
                for start in range(0, len(targets), bulk.CHUNK_SIZE):
                    added += tag_services.tags_add_bulk(
                        customer_ids=targets[start : start + bulk.CHUNK_SIZE], names=[tag_name], source_ref="bulk_run:0"
                    )
                elapsed = time.perf_counter() - started
                assert added == len(targets)
                assert CustomerTag.objects.filter(tag=tag, customer_id__gte=low, customer_id__lte=high).count() == added
                transaction.set_rollback(True)
            return elapsed

        plain_times, bulk_times = [], []
        for _ in range(args.repeats):  # interleaved
            plain_times.append(run_plain())
            bulk_times.append(run_bulk())
        plain, bulk_seconds = min(plain_times), min(bulk_times)
        transaction.set_rollback(True)
    print(f"plain INSERT ... SELECT         : {plain * 1000:9.1f} ms")
    print(f"tags_add_bulk (chunks + audit)  : {bulk_seconds * 1000:9.1f} ms")
    print(
        f"ratio bulk / plain: {bulk_seconds / plain:.2f}x  (target <= 3x; median ratio "
        f"{statistics.median(bulk_times) / statistics.median(plain_times):.2f}x)"
    )
    if args.full_run:
        full_run()


def full_run() -> None:
    """
    A whole bulk run over every customer, chunk by chunk in this process: the gallery's *inactive high-value*
    audience as a bulk-activity workflow (the gallery's template is a state tag now; the same workflow as
    bench_bulk_committed.py builds).
    """
    from decimal import Decimal

    from apps.automations.gallery import inactive_high_value_audience
    from apps.automations.services import workflow_activate, workflow_create

    with transaction.atomic():
        workflow = workflow_activate(
            workflow=workflow_create(
                name="Bench full run",
                definition={
                    "schema": 1,
                    "trigger": {"event": "customer.bulk_activity"},
                    "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["Bench full run"]}}],
                },
                audience=inactive_high_value_audience(30, Decimal("500")),
            )
        )
        started = time.perf_counter()
        run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
        for index in range(run.progress["chunks_total"]):
            bulk.bulk_chunk_process(run_id=run.pk, index=index)
        elapsed = time.perf_counter() - started
        run.refresh_from_db()
        progress = run.progress
        print(
            f"\nfull bulk run ({progress['chunks_total']} chunks of {bulk.CHUNK_SIZE}, one process): "
            f"{elapsed:.1f} s, matched {progress['matched']:,}, tagged {progress['actions'].get('s1', 0):,}, "
            f"status {run.status}"
        )
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
