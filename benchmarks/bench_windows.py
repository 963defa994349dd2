"""
Windowed audiences (orders / spend in the last N days) compiled by the condition compiler vs the hand-written
set-based floor, on PostgreSQL. Not a test: prints figures and ratios.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/bench?conn_max_age=600"
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py generate_data --customers 1000000 --orders 10000000 --seed 1
    .venv/bin/python benchmarks/bench_windows.py --repeats 5

Each audience is run compiled (the SQL `audience_queryset` produces, fetched like the hand query) and
hand-written, interleaved, `--repeats` times; the answers must be equal. Printed: min / median / max of each,
and the ratio compiled / hand of the minimum, the median and the maximum, plus the machine load (`uptime`).
`--chunked` also times the audience the way a bulk run reads it: chunk by chunk (5,000 customers,
`Scope(low, high)`), against the hand query per chunk.
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

from apps.customers.models import Customer, Order  # noqa: E402
from loyalty_site.lib.conditions import Scope, audience_queryset  # noqa: E402

DAYS = 30
WINDOW = {"days": DAYS}
NOT_CANCELLED = "status <> 'cancelled'"


def audiences():
    """(name, condition, hand-written SQL with a %(cutoff)s parameter and an optional chunk range)."""
    orders = f"FROM customers_order WHERE placed_at >= %(cutoff)s AND {NOT_CANCELLED} {{range}}"
    return [
        (
            ">= 3 orders and >= 800 spent in the last 30 days",
            {
                "all": [
                    {"field": "customer.orders_count", "window": WINDOW, "op": "gte", "value": 3},
                    {"field": "customer.total_spent", "window": WINDOW, "op": "gte", "value": 800},
                ]
            },
            f"SELECT customer_id {orders} GROUP BY customer_id "
            "HAVING COUNT(*) >= 3 AND SUM(total_shop - refunded_total_shop) >= 800",
        ),
        (
            "no order in the last 30 days (orders_count window 30 eq 0)",
            {"field": "customer.orders_count", "window": WINDOW, "op": "eq", "value": 0},
            "SELECT c.id FROM customers_customer c WHERE {crange} NOT EXISTS "
            "(SELECT 1 FROM customers_order o WHERE o.customer_id = c.id AND o.placed_at >= %(cutoff)s "
            "AND o.status <> 'cancelled')",
        ),
        (
            ">= 2 orders in the last 30 days",
            {"field": "customer.orders_count", "window": WINDOW, "op": "gte", "value": 2},
            f"SELECT customer_id {orders} GROUP BY customer_id HAVING COUNT(*) >= 2",
        ),
        (
            "spent < 100 in the last 30 days (holds at zero)",
            {"field": "customer.total_spent", "window": WINDOW, "op": "lt", "value": 100},
            "SELECT c.id FROM customers_customer c WHERE {crange} c.id NOT IN "
            f"(SELECT customer_id {orders} GROUP BY customer_id HAVING SUM(total_shop - refunded_total_shop) >= 100)",
        ),
    ]


def hand_sql(template: str, low: int | None = None, high: int | None = None) -> str:
    if low is None:
        return template.replace("{range}", "").replace("{crange}", "")
    return template.replace("{range}", f"AND customer_id >= {int(low)} AND customer_id < {int(high)}").replace(
        "{crange}", f"c.id >= {int(low)} AND c.id < {int(high)} AND"
    )


def fetch(sql: str, params) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def chunk_bounds(size: int) -> list[tuple[int, int]]:
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[::size])
    highest = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return list(zip(ids, [*ids[1:], highest + 1], strict=True))


def spread(values: list[float]) -> str:
    return f"min {min(values):8.3f} s  median {statistics.median(values):8.3f} s  max {max(values):8.3f} s"


def load() -> str:
    return os.popen("uptime").read().strip().split("load average:")[-1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunked", action="store_true", help="Also time chunk by chunk (as a bulk run reads).")
    parser.add_argument("--only", type=int, default=None, help="Only audience number N (0-based).")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench_windows.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    now = timezone.now()
    params = {"cutoff": now - timedelta(days=DAYS)}
    print(f"data: {Customer.objects.count():,} customers, {Order.objects.count():,} orders; load before: {load()}")
    command = "DATABASE_URL=... .venv/bin/python benchmarks/bench_windows.py " + " ".join(sys.argv[1:])
    for number, (name, condition, template) in enumerate(audiences()):
        if args.only is not None and number != args.only:
            continue
        queryset = audience_queryset(condition, now=now, base=Customer.objects.all()).order_by().values_list("pk")
        compiled, compiled_params = queryset.query.sql_with_params()
        hand = hand_sql(template)

        def run_compiled(compiled=compiled, compiled_params=compiled_params):
            return fetch(compiled, compiled_params)

        def run_hand(hand=hand):
            return fetch(hand, params)

        run_compiled(), run_hand()  # warm the cache for both
        times: dict[str, list[float]] = {"compiled": [], "hand": []}
        answers = {}
        for _ in range(args.repeats):  # interleaved: both see the same load
            for label, func in (("hand", run_hand), ("compiled", run_compiled)):
                started = time.perf_counter()
                answers[label] = func()
                times[label].append(time.perf_counter() - started)
        assert sorted(answers["compiled"]) == sorted(answers["hand"]), f"{name}: compiled and hand-written disagree"
        ratios = sorted(c / h for c, h in zip(times["compiled"], times["hand"], strict=True))
        print(f"\n[{number}] {name}: {len(answers['hand']):,} customers")
        print(f"    compiled     {spread(times['compiled'])}")
        print(f"    hand (floor) {spread(times['hand'])}")
        print(
            f"    ratio compiled/hand per interleaved pair: min {ratios[0]:.2f}x  median "
            f"{statistics.median(ratios):.2f}x  max {ratios[-1]:.2f}x  (target <= 1.5x); load {load()}"
        )
        if args.chunked:
            chunks = chunk_bounds(5000)
            chunk_times: dict[str, list[float]] = {"compiled": [], "hand": []}
            for _ in range(max(1, args.repeats // 2)):
                found = {"compiled": 0, "hand": 0}
                for label in ("hand", "compiled"):
                    started = time.perf_counter()
                    for low, high in chunks:
                        if label == "hand":
                            found[label] += len(fetch(hand_sql(template, low, high), params))
                        else:
                            scoped = audience_queryset(
                                condition, now=now, base=Customer.objects.all(), scope=Scope(low=low, high=high)
                            )
                            found[label] += len(list(scoped.order_by().values_list("pk", flat=True)))
                    chunk_times[label].append(time.perf_counter() - started)
                assert found["compiled"] == found["hand"] == len(answers["hand"]), found
            ratio = min(chunk_times["compiled"]) / min(chunk_times["hand"])
            print(
                f"    by chunks of 5,000 ({len(chunks)}): compiled {spread(chunk_times['compiled'])}; "
                f"hand {spread(chunk_times['hand'])}; ratio of minima {ratio:.2f}x"
            )
    print(f"\nreproduce: {command}")


if __name__ == "__main__":
    main()
