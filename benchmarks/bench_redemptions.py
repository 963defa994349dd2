"""
Benchmark: redemptions of ONE reward by 100 concurrent clients on PostgreSQL (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loyalty .venv/bin/python benchmarks/bench_redemptions.py \
        [--clients 100] [--attempts 60] [--stock 5000] [--pool 32]

It creates a throw-away test database (test_<name>), one reward with `--stock` units and `--clients`
members with enough points for every attempt. Each client thread sends `--attempts` redemptions one
after the other; requests are served by `--pool` worker threads, each holding one database connection
(like an application server with a connection pool: the shared server allows ~100 connections in all).
Latency is measured from the client's request to its answer (queueing included). At the end it checks
there was no oversell: issued codes == stock taken, stock == 0 when attempts > stock, and every
member's balance equals the sum of their ledger entries. Prints redemptions/s and p50/p95/p99.
"""

import argparse
import os
import queue
import statistics
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--attempts", type=int, default=60, help="redemption attempts per client")
    parser.add_argument("--stock", type=int, default=5000)
    parser.add_argument("--pool", type=int, default=32, help="database connections serving the clients")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection, connections
    from django.db.models import Sum

    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL: set DATABASE_URL.", file=sys.stderr)
        return 2

    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from apps.customers.models import Customer
        from apps.loyalty import services
        from apps.loyalty.models import Balance, LedgerEntry, Membership, Program, Redemption, Reward
        from loyalty_site.lib.errors import DomainError

        program = Program.objects.create(name="Bench", slug="bench", pending_days=0)
        cost = 10
        reward = Reward.objects.create(
            program=program, name="Hot item", kind="gift_card", points_cost=cost, stock=args.stock
        )
        members = []
        for index in range(args.clients):
            customer = Customer.objects.create(email=f"bench{index}@example.com")
            membership, _ = services.member_join(customer=customer, program=program)
            services.points_award(membership=membership, points=cost * args.attempts, reason="bench", key=f"b{index}")
            members.append(membership)

        requests: queue.Queue = queue.Queue()

        def worker() -> None:
            while True:
                item = requests.get()
                if item is None:
                    break
                membership, future = item
                try:
                    future.set_result(services.reward_redeem(membership=membership, reward=reward))
                except DomainError as error:
                    future.set_result(error)
                except Exception as error:
                    future.set_result(error)
            connections.close_all()

        latencies: list[float] = []
        outcomes = {"ok": 0, "out_of_stock": 0, "other": 0}
        lock = threading.Lock()
        start_gate = threading.Barrier(args.clients + 1)

        def client(membership) -> None:
            start_gate.wait()
            for _ in range(args.attempts):
                future: Future = Future()
                sent = time.perf_counter()
                requests.put((membership, future))
                result = future.result()
                elapsed = time.perf_counter() - sent
                with lock:
                    latencies.append(elapsed)
                    if isinstance(result, Redemption):
                        outcomes["ok"] += 1
                    elif isinstance(result, DomainError) and result.code == "out_of_stock":
                        outcomes["out_of_stock"] += 1
                    else:
                        outcomes["other"] += 1
                        print("unexpected:", repr(result), file=sys.stderr)

        workers = [threading.Thread(target=worker) for _ in range(args.pool)]
        clients = [threading.Thread(target=client, args=(m,)) for m in members]
        for thread in workers + clients:
            thread.start()
        start_gate.wait()
        began = time.perf_counter()
        for thread in clients:
            thread.join()
        wall = time.perf_counter() - began
        for _ in workers:
            requests.put(None)
        for thread in workers:
            thread.join()

        reward.refresh_from_db()
        issued = Redemption.objects.filter(reward=reward).count()
        spent = Balance.objects.aggregate(total=Sum("lifetime_spent"))["total"] or 0
        drift = 0
        for membership in Membership.objects.all():
            entries = LedgerEntry.objects.filter(membership=membership).aggregate(total=Sum("active_delta"))["total"]
            drift += abs((entries or 0) - Balance.objects.get(pk=membership.pk).active)
        oversell = issued - args.stock if issued > args.stock else 0
        ordered = sorted(latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

        setup = f"clients={args.clients} attempts/client={args.attempts} stock={args.stock} pool={args.pool}"
        print(f"{setup} cpus={os.cpu_count()}")
        counts = " ".join(f"{name}={value}" for name, value in outcomes.items())
        print(f"attempts={len(latencies)} {counts}")
        print(f"wall={wall:.2f}s  redemptions/s={outcomes['ok'] / wall:.1f}  attempts/s={len(latencies) / wall:.1f}")
        print(
            f"latency ms: p50={statistics.median(ordered) * 1000:.1f} p95={pct(0.95):.1f} p99={pct(0.99):.1f} "
            f"max={ordered[-1] * 1000:.1f}"
        )
        print(
            f"checks: issued={issued} stock_left={reward.stock} points_spent={spent} "
            f"(expected {issued * cost}) oversell={oversell} ledger_drift={drift}"
        )
        ok = (
            oversell == 0
            and issued + reward.stock == args.stock
            and spent == issued * cost
            and drift == 0
            and outcomes["other"] == 0
        )
        print("RESULT:", "OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    raise SystemExit(main())
