"""
Benchmark: promotions on PostgreSQL (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loyalty .venv/bin/python benchmarks/bench_promotions.py \
        [--validations 400] [--redeemers 100] [--attempts 10] [--budget 500] [--codes 100000] [--pool 32] [--only-codes]

It creates a throw-away test database (test_<name>) with 50 active promotions (45 automatic, 5 with codes,
each with a validation rule over the cart, mixed stacking categories and a budget), then measures:
1. validate (the service behind POST /api/v1/promotions/validate) for a 20-line cart with 5 codes, at 1
   and 16 concurrent clients: p50 / p95 / p99 in ms;
2. redemptions/s with `--redeemers` concurrent clients on ONE budget of `--budget` redemptions, served by
   `--pool` threads each holding one connection; checks 0 over the limit;
3. bonus-points awards/s with `--redeemers` concurrent members on ONE campaign points limit of `--points-limit`
   (30 points each, action reduce); checks the points awarded equal the counter and never exceed the limit;
4. code generation: `--codes` unique codes from a pattern, codes/s, with the progress of each chunk
   (`--only-codes` runs this phase alone: `--codes 1000000 --only-codes`).
Every figure is printed with the load average of the machine when it was taken (1, 5, 15 min).
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {pick(0.50):.1f} ms, p95 {pick(0.95):.1f} ms, p99 {pick(0.99):.1f} ms (n={len(ordered)})"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"[load average {one:.2f}, {five:.2f}, {fifteen:.2f}]"


def close_thread_connections(pool: ThreadPoolExecutor, workers: int) -> None:
    """Close each pool thread's own database connection (one job per thread, held together by a barrier)."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(workers)

    def close(_: int) -> None:
        barrier.wait(timeout=60)
        connections.close_all()

    list(pool.map(close, range(workers)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--validations", type=int, default=400, help="validations per concurrency level")
    parser.add_argument("--redeemers", type=int, default=100)
    parser.add_argument("--attempts", type=int, default=10, help="redemptions per redeemer")
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--codes", type=int, default=100_000, help="codes to generate (phase 4)")
    parser.add_argument("--only-codes", action="store_true", help="run the code generation (phase 4) only")
    parser.add_argument("--pool", type=int, default=32)
    parser.add_argument("--points-limit", type=int, default=3000, help="campaign points limit of the awards phase")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL: set DATABASE_URL.", file=sys.stderr)
        return 2

    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from apps.campaigns.models import LimitCounter, Redemption
        from apps.campaigns.promotions import services
        from apps.campaigns.promotions.eligibility import Cart, CartLine, promotions_evaluate
        from loyalty_site.lib.errors import DomainError

        if not args.only_codes:
            rule = {
                "all": [
                    {"field": "cart.total", "op": "gte", "value": 50},
                    {"field": "cart.quantity", "op": "gte", "value": 2},
                ]
            }
            codes = []
            for index in range(50):
                campaign = services.campaign_create(
                    name=f"Promo {index}",
                    type="discount_codes" if index < 5 else "automatic",
                    status="active",
                    priority=index % 7,
                    category=f"cat{index % 4}",
                    stacking=["stackable", "joint", "stackable", "exclusive"][index % 4] if index else "stackable",
                    joint_categories=["cat0", "cat2"],
                    validation_rule=rule,
                )
                services.incentive_create(
                    campaign=campaign,
                    kind="percent_lines" if index % 2 else "fixed_order",
                    percent=Decimal("5") if index % 2 else None,
                    amount=None if index % 2 else Decimal("1.00"),
                    lines_rule={"field": "line.title", "op": "contains", "value": f"item {index % 10}"}
                    if index % 2
                    else None,
                )
                services.limit_create(campaign=campaign, measure="discount_amount", limit=Decimal("1000000"))
                if index < 5:
                    codes.append(services.code_create(campaign=campaign, code=f"BENCH{index}").code)
            cart = Cart(
                currency="USD",
                lines=[
                    CartLine(index=i, title=f"item {i}", quantity=1 + i % 3, unit_price=Decimal("9.99") + i)
                    for i in range(20)
                ],
            )

            def validate_once(_: int) -> float:
                # Each client thread keeps its connection, as a web process with persistent connections does.
                started = time.perf_counter()
                promotions_evaluate(cart=cart, customer=None, codes=codes)
                return time.perf_counter() - started

            promotions_evaluate(cart=cart, customer=None, codes=codes)  # warm-up
            for clients in (1, 16):
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=clients) as pool:
                    samples = list(pool.map(validate_once, range(args.validations)))
                    elapsed = time.perf_counter() - started
                    close_thread_connections(pool, clients)
                print(
                    f"validate, 20 lines, 5 codes, 50 promotions, {clients:>2} clients: "
                    f"{percentiles(samples)}, {len(samples) / elapsed:.0f}/s {load()}"
                )

            budget = services.campaign_create(
                name="Budget", type="automatic", status="active", priority=100, stacking="exclusive"
            )
            services.incentive_create(campaign=budget, kind="fixed_order", amount=Decimal("1.00"))
            limit = services.limit_create(campaign=budget, measure="redemptions", limit=Decimal(args.budget))
            small = Cart(currency="USD", lines=[CartLine(index=0, title="x", quantity=1, unit_price=Decimal("20.00"))])

            def redeem_once(_: int) -> tuple[str, float]:
                started = time.perf_counter()
                try:
                    outcome = services.redemption_redeem(cart=small, customer=None, codes=[]).status
                except DomainError as error:
                    outcome = error.code
                return outcome, time.perf_counter() - started

            total = args.redeemers * args.attempts
            started = time.perf_counter()
            workers = min(args.redeemers, args.pool)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(redeem_once, range(total)))
                elapsed = time.perf_counter() - started
                close_thread_connections(pool, workers)
            granted = sum(1 for outcome, _ in results if outcome == "redeemed")
            used = LimitCounter.objects.get(limit=limit).used
            rows = Redemption.objects.filter(items__campaign=budget, status="redeemed").count()
            print(
                f"redeem, {args.redeemers} clients on one budget of {args.budget}: {total} attempts in {elapsed:.1f} s "
                f"= {total / elapsed:.0f} answers/s, {granted} granted (counter {used}, rows {rows}, "
                f"over the limit: {max(0, rows - args.budget)}), "
                f"latency {percentiles([s for _, s in results])} {load()}"
            )

            from apps.customers.models import Customer
            from apps.loyalty.models import PointLot, Program

            Program.objects.create(
                name="Club", slug="club", currency="USD", points_per_unit=Decimal("1"), pending_days=0
            )
            services.campaign_switch(campaign=budget, on=False, reason="bench: next phase")
            bonus = services.campaign_create(
                name="Bonus", type="automatic", status="active", priority=100, stacking="exclusive"
            )
            services.incentive_create(campaign=bonus, kind="bonus_points", points=30)
            points_limit = services.limit_create(
                campaign=bonus, measure="points", limit=Decimal(args.points_limit), action="reduce"
            )
            members = Customer.objects.bulk_create(
                [Customer(email=f"bench{index}@example.com") for index in range(args.redeemers)]
            )

            def award_once(index: int) -> tuple[str, float]:
                started = time.perf_counter()
                try:
                    customer = members[index % len(members)]
                    outcome = services.redemption_redeem(cart=small, customer=customer, codes=[]).status
                except DomainError as error:
                    outcome = error.code
                return outcome, time.perf_counter() - started

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(award_once, range(total)))
                elapsed = time.perf_counter() - started
                close_thread_connections(pool, workers)
            awarded = sum(PointLot.objects.filter(source_type="promotion").values_list("amount", flat=True))
            used = LimitCounter.objects.get(limit=points_limit).used
            print(
                f"bonus points, {args.redeemers} members on one points limit of {args.points_limit}: "
                f"{total} attempts in "
                f"{elapsed:.1f} s = {total / elapsed:.0f} answers/s, "
                f"{sum(1 for outcome, _ in results if outcome == 'redeemed')} awarded, "
                f"{awarded} points (counter {used}, "
                f"over the limit: {max(0, awarded - args.points_limit)}), "
                f"latency {percentiles([s for _, s in results])} "
                f"{load()}"
            )

        target = services.campaign_create(name="Codes", status="active")
        services.incentive_create(campaign=target, kind="fixed_order", amount=Decimal("1.00"))
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            print(f"  {done:,} / {total:,} codes after {time.perf_counter() - started:.1f} s {load()}", flush=True)

        print(f"code generation starts {load()}", flush=True)
        batch = services.codes_generate(campaign=target, pattern="BN-**********", count=args.codes, progress=progress)
        elapsed = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*), COUNT(DISTINCT UPPER(code)) FROM campaigns_code WHERE batch_id = %s", [batch.pk]
            )
            rows, distinct = cursor.fetchone()
        print(
            f"generate {batch.generated:,} codes (BN-**********): {elapsed:.1f} s = "
            f"{batch.generated / elapsed:,.0f} codes/s; {rows:,} rows, {distinct:,} distinct {load()}"
        )
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
