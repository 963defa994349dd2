"""
State tags benchmark (PostgreSQL). Not a test: prints figures.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/statetags_bench?conn_max_age=600"
    .venv/bin/python manage.py migrate
    .venv/bin/python benchmarks/bench_state_tags.py --generate --customers 1000000 --orders 10000000
    .venv/bin/python benchmarks/bench_state_tags.py            # on whatever data is there

The state tag is the gallery's "active high-value customer" (>= 3 orders and >= 800 spent in the shop
currency in the last 30 days: two windowed figures) plus the three spend tiers (one exclusive group).
Measured, on the same data in one run, every write rolled back at the end:

  1. the full recomputation (what activation does, and the floor a time pass is compared with): from no tag
     (it writes every carrier), then again with nothing to change (the pure cost of re-deciding everyone);
  2. the time pass after the clock moved 10 minutes, 1 hour and 1 day: how many candidates it touched and
     how long it took, against the full recomputation with nothing to change;
  3. per-event re-evaluation: the engine's work for one customer's event (lock the customer, evaluate the
     active high-value state tag and the tier group in memory, add/remove tags) for random customers — p50,
     p95, p99 — each in its own rolled-back transaction.
"""

import argparse
import os
import random
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

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.automations import gallery  # noqa: E402
from apps.automations.models import Workflow, WorkflowVersion  # noqa: E402
from apps.automations.services import workflow_create  # noqa: E402
from apps.automations.state_tags import (  # noqa: E402
    customer_reevaluate,
    state_units,
    state_workflows_active,
    time_pass,
    unit_recompute,
)
from apps.customers.models import Customer, Order  # noqa: E402
from apps.tagging.models import CustomerTag  # noqa: E402


class Rollback(Exception):
    """Raised at the end of the measured block: everything written is rolled back."""


def timed(func):
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def install(now) -> None:
    """The state tags, active (versions frozen) without the recomputation task: it is measured below."""
    for key in ("active_high_value", "spend_tiers"):
        built = gallery.TEMPLATES[key].build({})
        definitions = [built["definition"]] + [sibling["definition"] for sibling in built.get("siblings") or []]
        for index, definition in enumerate(definitions):
            workflow = workflow_create(name=f"bench {key} {index}", definition=definition, template=key)
            version = WorkflowVersion.objects.create(
                workflow=workflow, number=1, trigger=workflow.trigger, definition=workflow.definition, settings={}
            )
            Workflow.objects.filter(pk=workflow.pk).update(status="active", current_version=version)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generate", action="store_true", help="Run generate_data first.")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=300, help="Per-event re-evaluations to time.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run it on PostgreSQL (DATABASE_URL=postgres://...).")
    if args.generate:
        call_command("generate_data", customers=args.customers, orders=args.orders, seed=args.seed)
    customers, orders = Customer.objects.count(), Order.objects.count()
    last = Order.objects.order_by("-placed_at").values_list("placed_at", flat=True).first()
    # generate_data spreads orders over the year before it ran: measure "now" just after its last order.
    now = (last or timezone.now()) + timedelta(minutes=1)
    print(f"data: {customers:,} customers, {orders:,} orders; clock at {now.isoformat()}")
    try:
        with transaction.atomic():
            install(now)
            units = state_units(state_workflows_active())
            windowed = next(unit for unit in units if unit[0].workflow.template == "active_high_value")

            def recompute_all():
                return [unit_recompute(unit, now=now) for unit in units]

            fill_seconds, fills = timed(recompute_all)
            carriers = CustomerTag.objects.filter(source_ref__startswith="state_tag:").count()
            # A million new tag rows: autovacuum would analyze the table before the next pass; without fresh
            # statistics the planner takes it for empty and scans it whole for every list of customers.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE tagging_customertag, tagging_tagaudit")
            print(
                f"full recomputation from no tag (writes every carrier): {fill_seconds:.2f} s, "
                f"{sum(len(c.added) for c in fills):,} tags added ({carriers:,} carriers)"
            )
            floor_seconds, _ = timed(lambda: unit_recompute(windowed, now=now))
            tiers_seconds, _ = timed(lambda: [unit_recompute(unit, now=now) for unit in units if unit is not windowed])
            print(
                f"full recomputation, nothing to change: active high-value {floor_seconds:.2f} s, "
                f"spend tiers (3 state tags) {tiers_seconds:.2f} s   <- the floor"
            )
            Workflow.objects.update(state_checked_at=now)
            clock = now
            for label, step in (
                ("10 minutes", timedelta(minutes=10)),
                ("1 hour", timedelta(hours=1)),
                ("1 day", timedelta(days=1)),
            ):
                clock = clock + step
                seconds, results = timed(lambda at=clock: time_pass(now=at))
                hot = next(result for result in results if result.workflows == [windowed[0].pk])
                print(
                    f"time pass after {label:>10}: {seconds * 1000:8.1f} ms, {hot.candidates:,} candidates "
                    f"(of {customers:,}), +{hot.added} -{hot.removed}; "
                    f"{floor_seconds / seconds if seconds else float('inf'):,.0f}x faster than the full floor"
                )
            rng = random.Random(args.seed)
            top = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 1
            latencies = []
            for _ in range(args.events):
                customer_id = rng.randrange(1, top + 1)
                try:
                    with transaction.atomic():
                        seconds, _ = timed(
                            lambda cid=customer_id: customer_reevaluate(customer_id=cid, units=units, now=clock)
                        )
                        latencies.append(seconds * 1000)
                        raise Rollback
                except Rollback:
                    pass
            print(
                f"per-event re-evaluation ({len(latencies)} customers, 4 state tags, 2 windowed figures): "
                f"p50 {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms, "
                f"p99 {percentile(latencies, 0.99):.1f} ms"
            )
            raise Rollback
    except Rollback:
        print("(every write rolled back)")


if __name__ == "__main__":
    main()
