"""
A whole bulk run committed end to end (`manage.py run_workflow <id> --wait`, as a user runs it) against the
same run rolled back in process (bench_bulk.py's `--full-run` figure). Not a test: prints both and the ratio.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/bench?conn_max_age=600"
    .venv/bin/python manage.py generate_data --customers 1000000 --orders 10000000 --seed 1
    .venv/bin/python benchmarks/bench_bulk_committed.py

Each of `--pairs` interleaved rounds creates and activates an *inactive high-value* bulk workflow (the audience
of the gallery's state tag) twice (two fresh tags, so each committed run starts from a clean state), times the
rolled-back run in process, the same run committed in process (the second tag), then the committed run as a
subprocess (`run_workflow --wait`: chunk transactions commit, deferred foreign-key checks included); it prints
min / median / max of the times and of the ratios. The committed tags stay. `--rerun` then runs the
in-process workflow a second time (it tags only customers who entered the audience meanwhile); `--profile` one
more committed run with each chunk split into its statements, its deferred foreign-key checks (per constraint)
and its COMMIT.
"""

import argparse
import os
import statistics
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
from apps.automations.models import WorkflowRun  # noqa: E402
from apps.automations.services import workflow_activate, workflow_create  # noqa: E402
from apps.customers.models import Customer, DomainEvent  # noqa: E402
from apps.tagging.models import CustomerTag, TagAudit  # noqa: E402


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


def foreign_keys(*models) -> list[tuple[str, str]]:
    """(table, constraint) of every foreign key on the tables of `models` (what a chunk's rows are checked by)."""
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
            [tables],
        )
        return cursor.fetchall()


def profiled_run(tag: str) -> None:
    """
    One more committed run, each chunk split in three: its statements, its deferred foreign-key checks (which the
    chunk fires itself before its progress update, `bulk._deferred_checks_now`; here one constraint at a time by
    `SET CONSTRAINTS <name> IMMEDIATE`; `EXPLAIN` never shows them) and its progress update with the COMMIT (the WAL
    flush, unless the chunk commits asynchronously).
    """
    constraints = foreign_keys(CustomerTag, TagAudit, DomainEvent, WorkflowRun)
    per_constraint = dict.fromkeys(constraints, 0.0)
    marks: list[float] = []
    checks_now = bulk._deferred_checks_now

    def timed_checks() -> None:
        marks.append(time.perf_counter())
        with connection.cursor() as cursor:
            for table, name in constraints:
                started = time.perf_counter()
                cursor.execute(f'SET CONSTRAINTS "{name}" IMMEDIATE')
                per_constraint[table, name] += time.perf_counter() - started
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # any other table's
        marks.append(time.perf_counter())

    bulk._deferred_checks_now = timed_checks
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
        bulk._deferred_checks_now = checks_now
    chunks = run.progress["chunks_total"]
    print(
        f"profile, committed in process ({chunks} chunks): statements {statements:.2f} s, deferred foreign-key "
        f"checks {checks:.2f} s ({checks / chunks * 1000:.1f} ms a chunk), progress update and COMMIT {commits:.2f} s "
        f"({commits / chunks * 1000:.1f} ms a chunk); load {load()}"
    )
    for (table, name), seconds in sorted(per_constraint.items(), key=lambda item: -item[1]):
        if seconds >= 0.05:
            print(f"  {table}: {name}: {seconds:.2f} s")


def whole_run(workflow) -> tuple[float, dict]:
    """Start a bulk run of `workflow` and process every chunk here, one after the other: (seconds, progress)."""
    started = time.perf_counter()
    run = bulk.bulk_run_start(workflow=workflow, enqueue=False)
    for index in range(run.progress["chunks_total"]):
        bulk.bulk_chunk_process(run_id=run.pk, index=index)
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    return elapsed, run.progress


def command_run(workflow, jobs: int = 1) -> tuple[float, float]:
    """`manage.py run_workflow <id> --wait [--jobs N]` in a subprocess: (seconds end to end, of its chunks)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_workflow", str(workflow.pk), "--wait", "--jobs", str(jobs)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    elapsed = time.perf_counter() - started
    # run_workflow prints the time of its chunks: the rest is the command's start-up (Python, Django, apps).
    return elapsed, float(out.split(" s)")[0].rsplit("(", 1)[1])


def spread(values: list[float], unit: str = "x") -> str:
    ordered = sorted(values)
    return f"{ordered[0]:.2f} / {statistics.median(ordered):.2f} / {ordered[-1]:.2f}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default=f"Committed {int(time.time())}")
    parser.add_argument("--pairs", type=int, default=3, help="Interleaved rounds (rolled back, committed, command).")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=bulk.CHUNK_SIZE,
        help="Customers a chunk for the in-process runs (the command keeps the default and is then skipped).",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="Also time `run_workflow --wait --jobs N` each round (chunks N at a time; a fresh tag); 0: not.",
    )
    parser.add_argument(
        "--rerun", action="store_true", help="Then run a committed workflow again: it tags only newcomers."
    )
    parser.add_argument(
        "--profile", action="store_true", help="Then one more committed run, split into statements, checks, COMMIT."
    )
    args = parser.parse_args()
    with_command = args.chunk_size == bulk.CHUNK_SIZE
    bulk.CHUNK_SIZE = args.chunk_size
    print(f"data: {Customer.objects.count():,} customers; {bulk.CHUNK_SIZE:,} a chunk; load {load()}")
    ratios: dict[str, list[float]] = {"in process": [], "command chunks": [], "end to end": []}
    seconds: dict[str, list[float]] = {"rolled back": [], "in process": [], "command chunks": [], "end to end": []}
    if args.jobs:
        for name in (f"--jobs {args.jobs} chunks", f"--jobs {args.jobs} end to end"):
            ratios[name], seconds[name] = [], []
    other = None
    for pair in range(1, args.pairs + 1):
        # Fresh tags each round, so every committed run starts with nobody tagged.
        workflow = inactive_high_value(f"{args.tag} {pair}a")
        with transaction.atomic():
            rolled_back, progress = whole_run(workflow)
            transaction.set_rollback(True)
        print(f"[{pair}] rolled back, in process: {rolled_back:.1f} s ({progress['matched']:,} matched); load {load()}")
        # The same run committed chunk by chunk, in this process (what the commits cost, without start-up).
        other = inactive_high_value(f"{args.tag} {pair}b")
        in_process, first = whole_run(other)
        print(
            f"[{pair}] committed, in process: {in_process:.1f} s ({in_process / rolled_back:.2f}x; "
            f"{first['chunks_total']} chunks, {first['actions'].get('s1', 0):,} tagged); load {load()}"
        )
        seconds["rolled back"].append(rolled_back)
        seconds["in process"].append(in_process)
        ratios["in process"].append(in_process / rolled_back)
        if not with_command:
            continue
        end_to_end, chunks = command_run(workflow)
        print(
            f"[{pair}] committed, run_workflow --wait --jobs 1: {end_to_end:.1f} s, of which chunks {chunks:.1f} s "
            f"({chunks / rolled_back:.2f}x) and start-up {end_to_end - chunks:.1f} s ({end_to_end / rolled_back:.2f}x "
            f"end to end); load {load()}"
        )
        seconds["command chunks"].append(chunks)
        seconds["end to end"].append(end_to_end)
        ratios["command chunks"].append(chunks / rolled_back)
        ratios["end to end"].append(end_to_end / rolled_back)
        if args.jobs:
            # Another fresh tag: the same committed run with its chunks processed N at a time.
            end_to_end, chunks = command_run(inactive_high_value(f"{args.tag} {pair}d"), jobs=args.jobs)
            print(
                f"[{pair}] committed, run_workflow --wait --jobs {args.jobs}: {end_to_end:.1f} s, of which chunks "
                f"{chunks:.1f} s ({chunks / rolled_back:.2f}x) and start-up {end_to_end - chunks:.1f} s "
                f"({end_to_end / rolled_back:.2f}x end to end); load {load()}"
            )
            for name, value in ((f"--jobs {args.jobs} chunks", chunks), (f"--jobs {args.jobs} end to end", end_to_end)):
                seconds[name].append(value)
                ratios[name].append(value / rolled_back)
    print("min / median / max:")
    for name, values in seconds.items():
        if values:
            print(f"  {name}: {spread(values, ' s')}" + (f"; ratio {spread(ratios[name])}" if name in ratios else ""))
    print("  target: committed in process and the command's chunks <= 1.5x the rolled-back run")
    if args.rerun and other is not None:
        # A second run of the last committed workflow: only customers who entered the audience since (its
        # `as_of` moved on) get the tag; everyone it tagged already is skipped.
        again, progress = whole_run(other)
        print(
            f"second committed run of the same workflow: {again:.1f} s, matched {progress['matched']:,} "
            f"(first run {first['matched']:,}, tagged {first['actions'].get('s1', 0):,}), "
            f"tagged {progress['actions'].get('s1', 0):,}; load {load()}"
        )
    if args.profile:
        profiled_run(f"{args.tag} c")
    print(
        "reproduce: DATABASE_URL=... .venv/bin/python benchmarks/bench_bulk_committed.py "
        "[--pairs 3] [--jobs 2] [--rerun] [--profile] [--chunk-size N]"
    )


if __name__ == "__main__":
    main()
