"""
A whole bulk run committed end to end (`manage.py run_workflow <id> --wait`, as a user runs it) against the
same run rolled back in process (bench_bulk.py's `--full-run` figure). Not a test: prints both and the ratio.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/bench?conn_max_age=600"
    .venv/bin/python manage.py generate_data --customers 1000000 --orders 10000000 --seed 1
    .venv/bin/python benchmarks/bench_bulk_committed.py

It creates and activates an *inactive high-value* bulk workflow (the audience of the gallery's state
tag) twice (two tags, so the committed run starts from a clean state), times the rolled-back run in
process, the same run committed in process (the second tag), then the committed run as a subprocess
(`run_workflow --wait`: chunk transactions commit, deferred foreign-key checks included). The committed
tags stay (a second run re-tags nothing); use a fresh `--tag` to measure again.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.dev")

import django  # noqa: E402

django.setup()

from decimal import Decimal  # noqa: E402

from django.db import connection, transaction  # noqa: E402

from apps.automations import bulk  # noqa: E402
from apps.automations.gallery import inactive_high_value_audience  # noqa: E402
from apps.automations.services import workflow_activate, workflow_create  # noqa: E402
from apps.customers.models import Customer  # noqa: E402


def load() -> str:
    return os.popen("uptime").read().strip().split("load average:")[-1].strip()


def inactive_high_value(tag: str):
    """The *inactive high-value* audience as a bulk-activity workflow (the gallery's template is a state tag now)."""
    return workflow_activate(
        workflow=workflow_create(
            name=f"Bench {tag}",
            definition={
                "schema": 1,
                "trigger": {"event": "customer.bulk_activity"},
                "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": [tag]}}],
            },
            audience=inactive_high_value_audience(30, Decimal("500")),
        )
    )


def profiled_run(tag: str) -> None:
    """
    One more committed run, each chunk split in three: its statements (up to its progress merge), its deferred
    foreign-key checks (fired by `SET CONSTRAINTS ALL IMMEDIATE` just before the commit; `EXPLAIN` never shows
    them) and its COMMIT (the WAL flush, unless the chunk commits asynchronously).
    """
    marks: list[float] = []
    progress_commit = bulk._progress_commit

    def timed_progress_commit(run_id: int, index: int, counts: dict) -> bool:
        done = progress_commit(run_id, index, counts)
        marks.append(time.perf_counter())
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        marks.append(time.perf_counter())
        return done

    bulk._progress_commit = timed_progress_commit
    try:
        run = bulk.bulk_run_start(workflow=inactive_high_value(tag), enqueue=False)
        statements = checks = commits = 0.0
        for index in range(run.progress["chunks_total"]):
            marks.clear()
            started = time.perf_counter()
            bulk.bulk_chunk_process(run_id=run.pk, index=index)
            ended = time.perf_counter()
            statements += marks[0] - started
            checks += marks[1] - marks[0]
            commits += ended - marks[1]
    finally:
        bulk._progress_commit = progress_commit
    chunks = run.progress["chunks_total"]
    print(
        f"profile, committed in process ({chunks} chunks): statements {statements:.2f} s, deferred foreign-key "
        f"checks {checks:.2f} s ({checks / chunks * 1000:.1f} ms a chunk), COMMIT {commits:.2f} s "
        f"({commits / chunks * 1000:.1f} ms a chunk); load {load()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default=f"Committed {int(time.time())}")
    parser.add_argument(
        "--profile", action="store_true", help="Then one more committed run, split into statements, checks, COMMIT."
    )
    args = parser.parse_args()
    print(f"data: {Customer.objects.count():,} customers; load {load()}")
    workflow = inactive_high_value(args.tag)
    with transaction.atomic():
        started = time.perf_counter()
        run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
        for index in range(run.progress["chunks_total"]):
            bulk.bulk_chunk_process(run_id=run.pk, index=index)
        rolled_back = time.perf_counter() - started
        run.refresh_from_db()
        matched = run.progress["matched"]
        transaction.set_rollback(True)
    print(f"rolled back, in process: {rolled_back:.1f} s ({matched:,} matched); load {load()}")
    # The same run committed chunk by chunk, in this process (what the commits cost, without start-up).
    other = inactive_high_value(f"{args.tag} b")
    started = time.perf_counter()
    run = bulk.bulk_run_start(workflow=other, enqueue=False)
    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)
    in_process = time.perf_counter() - started
    print(f"committed, in process: {in_process:.1f} s ({in_process / rolled_back:.2f}x the rolled-back run)")
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_workflow", str(workflow.pk), "--wait"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    committed = time.perf_counter() - started
    print(out.strip())
    # run_workflow prints the time of its chunks: the rest is the command's start-up (Python, Django, apps).
    chunks = float(out.split(" s)")[0].rsplit("(", 1)[1])
    print(
        f"committed, run_workflow --wait: {committed:.1f} s, of which chunks {chunks:.1f} s "
        f"and start-up {committed - chunks:.1f} s; load {load()}"
    )
    print(
        f"ratio committed / rolled back: end to end {committed / rolled_back:.2f}x, "
        f"the command's chunks {chunks / rolled_back:.2f}x (target <= 1.5x)"
    )
    if args.profile:
        profiled_run(f"{args.tag} c")
    print("reproduce: DATABASE_URL=... .venv/bin/python benchmarks/bench_bulk_committed.py [--profile]")


if __name__ == "__main__":
    main()
