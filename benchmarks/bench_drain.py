"""
Benchmark: the engine's drain in process — the worker's own CPU and SQL statements per event, with no
qcluster, broker or HTTP around it (not a test; issue 12). `bench_events.py` measures the whole path with
real workers; this one isolates the engine's task so each change to it can be measured on its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/perfdrain .venv/bin/python benchmarks/bench_drain.py \
        [--events 500] [--repeats 3] [--batch 50] [--skip tag orders] [--aged] [--profile FILE]

It creates a throw-away database (<name>_drainbench), customers, an active loyalty program and the two
workflows of `bench_events.py` — "event.custom named bench → add tag Bench" and "order.created → add tag
Buyer + award 10 points" — commits `--events` events at once (their tasks are not queued), then calls the
engine's outbox task (`apps.automations.tasks.process_domain_event`) until none is pending, as a worker
would: process CPU (user + system, this process only: PostgreSQL's CPU is not included), wall time, and the
statements per event (counted, not logged). `--profile FILE` writes a cProfile of the drains to FILE and
prints the top functions by cumulative time. Run it `nice`; it prints the load average beside each figure.
"""

import argparse
import cProfile
import pstats
import statistics
import time

from queue_harness import bench_database, bench_workflows, events_commit, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--events", type=int, default=500, help="events committed at once per drain")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50, help="AUTOMATIONS_EVENT_BATCH")
    parser.add_argument("--skip", nargs="*", default=[], choices=["tag", "orders"])
    parser.add_argument("--profile", help="write a cProfile of the drains here and print its top")
    parser.add_argument(
        "--sets", choices=["on", "off"], default="on", help="off: the per-event path only (AUTOMATIONS_EVENT_SETS)"
    )
    parser.add_argument("--keepdb", action="store_true", help="keep (and reuse) the throw-away database")
    parser.add_argument(
        "--aged", action="store_true", help="a backlog: the events aged past the outbox grace minute before the drain"
    )
    args = parser.parse_args()

    with bench_database(test_suffix="_drainbench", keepdb=args.keepdb):
        from django.conf import settings
        from django.db import connection

        settings.AUTOMATIONS_EVENT_BATCH = args.batch
        settings.AUTOMATIONS_EVENT_SETS = args.sets == "on"
        print(
            f"start: {load()}, batches of {args.batch}, {args.events} events x {args.repeats}, "
            f"set-based lane {args.sets}",
            flush=True,
        )
        from datetime import timedelta

        from django.utils import timezone

        from apps.automations import tasks as engine_tasks
        from apps.automations.models import Workflow, WorkflowRun
        from apps.customers.models import Customer, DomainEvent
        from apps.tagging.models import CustomerTag
        from loyalty_site.lib import tasks
        from tests.loyalty.conftest import program_make

        tasks.enqueue_on_commit = lambda *args, **kwargs: None  # the drain loop below is the worker
        from apps.automations.models import WorkflowVersion
        from apps.loyalty.models import Program

        # a kept database: start over from empty workflows, a fresh program and new customers
        Workflow.objects.update(current_version=None)
        WorkflowRun.objects.all().delete()
        WorkflowVersion.objects.all().delete()
        Workflow.objects.all().delete()
        if not Program.objects.exists():
            program_make()
        total = args.events * args.repeats * 2
        stamp = f"{time.time():.0f}"
        Customer.objects.bulk_create(
            [Customer(external_id=f"b{stamp}-{i}", email=f"b{stamp}-{i}@example.com") for i in range(total)],
            batch_size=5000,
        )
        buyer = bench_workflows()
        customers = iter(Customer.objects.filter(external_id__startswith=f"b{stamp}-").order_by("pk"))
        statements = [0]

        def count(execute, sql, params, many, context):
            statements[0] += 1
            return execute(sql, params, many, context)

        profiler = cProfile.Profile() if args.profile else None

        def drain(kind: str) -> tuple[float, float, float]:
            rows = [next(customers) for _ in range(args.events)]
            events_commit(rows, kind=kind)
            name = "event.custom" if kind == "tag" else "order.created"
            if args.aged:  # arrivals outran the drain: every event is older than the outbox grace
                DomainEvent.objects.filter(name=name, status="pending").update(
                    created_at=timezone.now() - timedelta(minutes=5)
                )
            statements[0] = 0
            cpu, wall = time.process_time(), time.perf_counter()
            with connection.execute_wrapper(count):
                if profiler:
                    profiler.enable()
                while True:
                    # pending for the engine (an order's event also waits for loyalty's earning, not run here)
                    pending = (
                        DomainEvent.objects.filter(name=name, status="pending")
                        .exclude(receipts__consumer="automations")
                        .order_by("pk")
                        .values_list("pk", flat=True)
                    )
                    first = pending.first()
                    if first is None:
                        break
                    engine_tasks.process_domain_event(first)
                if profiler:
                    profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if kind == "tag":
                assert CustomerTag.objects.filter(tag__name="Bench", customer__in=rows).count() == len(rows)
            else:
                done = WorkflowRun.objects.filter(workflow=buyer, status="succeeded", customer__in=rows).count()
                assert done == len(rows), done
            return cpu / len(rows), wall / len(rows), statements[0] / len(rows)

        for kind, label in (("tag", "custom event → add tag"), ("orders", "order → tag + points")):
            if kind in args.skip:
                continue
            results = [drain("tag" if kind == "tag" else "order") for _ in range(args.repeats)]
            cpus = [cpu * 1000 for cpu, _, _ in results]
            walls = [wall * 1000 for _, wall, _ in results]
            print(
                f"{label} (lane {args.sets}{', a backlog' if args.aged else ''}): worker CPU per event "
                f"{min(cpus):.2f} / {statistics.median(cpus):.2f} / {max(cpus):.2f} ms "
                f"(min / median / max; {1000 / statistics.median(cpus):.0f} events per worker CPU-second), "
                f"wall {statistics.median(walls):.2f} ms, {results[0][2]:.1f} statements per event "
                f"(incl. the harness's one look-up per task) [{load()}]",
                flush=True,
            )
        if profiler:
            profiler.dump_stats(args.profile)
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
