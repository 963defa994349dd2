"""
Messaging benchmark (PostgreSQL). Not a test: prints figures, each with the load average beside it.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/msgbench?conn_max_age=600"
    .venv/bin/python manage.py migrate
    nice .venv/bin/python benchmarks/bench_messages.py --customers 10000 --workers 2 4

Measured:
  1. e-mails/s of a bulk run ("run now" of a notify.email marketing newsletter over every customer, consent and
     frequency caps on) delivered to a local SMTP sink (aiosmtpd on 127.0.0.1, in a process of its own that
     only counts recipients: each address must receive exactly one): the chunks queue the delivery rows
     set-based and enqueue sending tasks of 500; a real `manage.py qcluster`
     with Q_WORKERS = 2, then 4, configured only through its environment (EMAIL_BACKEND / EMAIL_HOST /
     EMAIL_PORT, as a deployment would), runs chunks and sending tasks off the ORM broker. Timed from "run now"
     until the last row is saved `sent` (queueing + sending), and the sending part alone; the qcluster's CPU
     seconds per e-mail (its workers included) say what an idle machine would do;
  2. the per-message cost of the consent + address + send-governance decision: the set-based decision a bulk
     run makes for a chunk (`deliveries_queue_many`'s checks: a few queries for the whole chunk) against
     the one-message decision a workflow step makes (`delivery_queue`'s checks: queries per message).
A run that leaves any row unsent (failed, refused, stuck) prints why and exits non-zero: a benchmark that
"sends" nothing must not print a rate. The benchmark's customers (e-mail @bench.example) are created once and
kept; each run's deliveries are deleted afterwards; the sending policy is restored.
"""

import argparse
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.dev")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.models import OrmQ  # noqa: E402

from apps.automations import bulk  # noqa: E402
from apps.automations.models import Workflow, WorkflowRun  # noqa: E402
from apps.automations.services import workflow_activate, workflow_create  # noqa: E402
from apps.customers.messaging import consent, governance, services  # noqa: E402
from apps.customers.messaging.models import Delivery, SendingPolicy  # noqa: E402
from apps.customers.models import Customer  # noqa: E402
from tests.messaging.support import free_port  # noqa: E402

DOMAIN = "bench.example"
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
CAPS = {"email_per_day": 5, "email_per_week": 20, "any_per_day": 10, "any_per_week": 40}


class SinkProcess:
    """
    An aiosmtpd SMTP sink in a process of its own (its own share of the CPU, no GIL shared with this process's
    polling): it only counts the envelopes' recipients — the tests' `SmtpSink` parses every message, which
    in this process made the sink, not the senders, the bottleneck. `messages` is the number accepted;
    `finish()` returns the recipient counts and the sink's CPU seconds.
    """

    def __init__(self) -> None:
        # spawned, not forked: a forked child would share (and on exit could close) this process's DB connection
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.accepted = context.Value("q", 0)
        self.stop_event = context.Event()
        parent, child = context.Pipe()
        self.pipe = parent
        self.process = context.Process(
            target=sink_serve, args=(self.port, self.accepted, self.stop_event, child), daemon=True
        )

    def __enter__(self) -> "SinkProcess":
        self.process.start()
        assert self.pipe.recv() == "ready"
        return self

    @property
    def messages(self) -> int:
        return int(self.accepted.value)

    def finish(self) -> tuple[Counter, float]:
        self.pipe.send("report")
        return self.pipe.recv()

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.process.join(timeout=30)


def sink_serve(port: int, accepted, stop_event, pipe) -> None:
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    recipients: Counter = Counter()

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:
            recipients.update(envelope.rcpt_tos)
            with accepted.get_lock():
                accepted.value += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    pipe.send("ready")
    while not stop_event.is_set():
        if pipe.poll(0.5):
            pipe.recv()
            times = os.times()
            pipe.send((Counter(recipients), times.user + times.system))
            recipients.clear()
    controller.stop()


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def ensure_customers(count: int) -> int:
    have = Customer.objects.filter(email__endswith="@" + DOMAIN).count()
    if have < count:
        Customer.objects.bulk_create(
            [Customer(email=f"b{index}@{DOMAIN}", first_name=f"B{index}") for index in range(have, count)],
            batch_size=5_000,
        )
    return Customer.objects.count()


def bench_workflow(purpose: str) -> Workflow:
    Workflow.objects.filter(name="bench: newsletter").update(status="paused")
    workflow = workflow_create(
        name="bench: newsletter",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.bulk_activity"},
            "steps": [
                {
                    "id": "n",
                    "action": "notify.email",
                    "params": {"subject": "Hi {{ customer.first_name }}", "body": "News", "purpose": purpose},
                }
            ],
        },
    )
    return workflow_activate(workflow=workflow)


def qcluster(workers: int, sink: SinkProcess) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.dev",
        "Q_WORKERS": str(workers),
        "TASKS_SYNC": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(cluster: subprocess.Popen) -> None:
    os.killpg(cluster.pid, signal.SIGTERM)
    try:
        cluster.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()


def group_cpu(group: int) -> float:
    """CPU seconds (user + system) of the live processes of process group `group` (the qcluster and its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:  # pgrp; fields[11:15]: utime, stime, cutime, cstime
            total += sum(int(value) for value in fields[11:15])
    return total / ticks


def bulk_send(workers: int, sink: SinkProcess, *, purpose: str, timeout: float) -> dict[str, float]:
    OrmQ.objects.all().delete()  # nothing left over from an earlier, interrupted run
    workflow = bench_workflow(purpose)
    cluster = qcluster(workers, sink)
    try:
        time.sleep(5)  # the cluster's workers are up (not timed)
        cpu_before = group_cpu(cluster.pid)
        before = sink.messages
        _, sink_cpu_before = sink.finish()
        started = time.perf_counter()
        run = bulk.bulk_run_start(workflow=workflow)
        cause = f"bulk_run:{run.pk}"
        total = Customer.objects.count()
        queued_at = first_sent = None
        deadline = started + timeout
        while time.perf_counter() < deadline:
            sent = sink.messages - before
            if first_sent is None and sent:
                first_sent = time.perf_counter()
            if queued_at is None and WorkflowRun.objects.filter(pk=run.pk, status="succeeded").exists():
                queued_at = time.perf_counter()
            if queued_at and not Delivery.objects.filter(cause=cause, status="queued").exists():
                break
            if Delivery.objects.filter(cause=cause).exclude(error="").exists():
                break  # a provider error: reported below
            time.sleep(0.25)
        finished = time.perf_counter()
        sent = sink.messages - before
        load_at_end = load()
        recipients, sink_cpu = sink.finish()
        cluster_cpu = group_cpu(cluster.pid) - cpu_before
    finally:
        stop(cluster)
    outcome = Counter(Delivery.objects.filter(cause=cause).values_list("status", "reason", "error"))
    Delivery.objects.filter(cause=cause).delete()
    Workflow.objects.filter(pk=workflow.pk).update(status="paused")
    twice = sum(1 for count in recipients.values() if count > 1)
    if outcome != Counter({("sent", "", ""): total}) or sent != total or len(recipients) != total or twice:
        print(
            f"  FAILED: {sent} of {total} e-mails reached the sink ({len(recipients)} addresses, {twice} more than"
            f" once); rows by (status, reason, error): {dict(outcome)}"
        )
        sys.exit(1)
    elapsed = finished - started
    sending = finished - (first_sent or started)
    return {
        "emails": sent,
        "seconds": elapsed,
        "per_second": sent / elapsed,
        "queue_seconds": (queued_at or finished) - started,
        "send_per_second": sent / sending if sending else 0.0,
        "cpu_ms": cluster_cpu / sent * 1e3,
        "sink_cpu_ms": (sink_cpu - sink_cpu_before) / sent * 1e3,
        "load": load_at_end,
    }


def check_overhead(sample: int, *, per_row_sample: int) -> tuple[float, float, int]:
    """
    µs per message of the consent + address + governance decision: set-based over `sample` customers (the
    calls `deliveries_queue_many` makes), one at a time over `per_row_sample` (the calls `delivery_queue`
    makes). Marketing e-mail, frequency caps on, a week of sent newsletters per customer to count.
    """
    customers = list(Customer.objects.order_by("pk")[:sample])
    now = timezone.now()
    history = [
        Delivery(
            key=f"bench-history:{customer.pk}:{day}",
            channel="email",
            purpose="marketing",
            customer=customer,
            to=customer.email,
            status="sent",
            cause="bench-history",
            created_at=now - timezone.timedelta(days=day, hours=1),
            sent_at=now - timezone.timedelta(days=day, hours=1),
        )
        for customer in customers
        for day in (1, 3)
    ]
    Delivery.objects.bulk_create(history, batch_size=5_000)
    try:
        with connection.execute_wrapper(counting := QueryCounter()):
            started = time.perf_counter()
            decisions = governance.governance_decide_many(
                customers, channel="email", purpose="marketing", priority=0, cause="bench", now=now
            )
            refusals = consent.consent_refusals_many(customers, channel="email", purpose="marketing")
            decided = Counter()
            for customer in customers:
                _, address_ok = services.recipient_address(customer, channel="email")
                refusal = refusals.get(customer.pk) or (None if address_ok else "invalid_address")
                decided[refusal or decisions.get(customer.pk, governance.SEND_NOW).reason or "send"] += 1
            set_based_us = (time.perf_counter() - started) / len(customers) * 1e6
        set_queries = counting.count
        singles = customers[:per_row_sample]
        started = time.perf_counter()
        for customer in singles:
            _, address_ok = services.recipient_address(customer, channel="email")
            services._decide(
                customer,
                channel="email",
                purpose="marketing",
                address_ok=address_ok,
                priority=0,
                cause="bench",
                now=now,
            )
        per_row_us = (time.perf_counter() - started) / len(singles) * 1e6
    finally:
        Delivery.objects.filter(cause="bench-history").delete()
    return set_based_us, per_row_us, set_queries


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="*", default=[2, 4])
    parser.add_argument("--purpose", choices=["marketing", "transactional"], default="marketing")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--check-sample", type=int, default=5_000, help="customers in the check overhead")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run on PostgreSQL: export DATABASE_URL=postgres://...")
    total = ensure_customers(args.customers)
    print(f"customers: {total} (database {settings.DATABASES['default']['NAME']}); {load()} on {os.cpu_count()} cores")
    policy = SendingPolicy.current()
    saved = {name: getattr(policy, name) for name in CAPS}
    SendingPolicy.objects.filter(pk=policy.pk).update(**CAPS)
    try:
        with SinkProcess() as sink:
            for workers in args.workers:
                figures = bulk_send(workers, sink, purpose=args.purpose, timeout=args.timeout)
                print(
                    f"bulk run, {args.purpose} e-mail, {workers} workers: {figures['emails']:.0f} e-mails in"
                    f" {figures['seconds']:.1f} s = {figures['per_second']:.0f} e-mails/s end to end (rows queued in"
                    f" {figures['queue_seconds']:.1f} s; sending alone {figures['send_per_second']:.0f}/s);"
                    f" CPU per e-mail: qcluster {figures['cpu_ms']:.2f} ms, SMTP sink {figures['sink_cpu_ms']:.2f} ms;"
                    f" each address received exactly one; {figures['load']}"
                )
        sample = min(total, args.check_sample)
        set_us, row_us, set_queries = check_overhead(sample, per_row_sample=min(sample, 500))
        print(
            f"consent + address + caps decision, marketing e-mail with frequency caps on: {set_us:.0f} µs/message"
            f" set-based ({sample} customers in {set_queries} queries), {row_us:.0f} µs/message one at a time;"
            f" {load()}"
        )
    finally:
        SendingPolicy.objects.filter(pk=policy.pk).update(**saved)


if __name__ == "__main__":
    main()
