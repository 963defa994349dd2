"""
Messaging benchmark (PostgreSQL). Not a test: prints figures.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/messaging?conn_max_age=600"
    .venv/bin/python manage.py migrate
    nice .venv/bin/python benchmarks/bench_messages.py --customers 20000 --workers 2 4

Measured:
  1. e-mails/s of a bulk run ("run now" of a notify.email workflow over every customer) delivered to a local
     SMTP sink (aiosmtpd on 127.0.0.1, in this process): the chunks queue the delivery rows set-based and
     enqueue sending tasks of 500; a real `manage.py qcluster` with Q_WORKERS = 2, then 4, drains the ORM
     broker. Timed from "run now" until the last row is sent (queueing + sending), and the sending part alone;
  2. the per-message overhead of the consent and send-governance checks: the set-based decision a bulk run
     makes, and the single-message decision (`delivery_queue`'s checks) a workflow step makes.
The benchmark's customers (e-mail @bench.example) and their rows are created once and kept; each run's
deliveries are deleted afterwards.
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

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.automations import bulk  # noqa: E402
from apps.automations.models import Workflow, WorkflowRun  # noqa: E402
from apps.automations.services import workflow_activate, workflow_create  # noqa: E402
from apps.customers.messaging import consent, governance, services  # noqa: E402
from apps.customers.messaging.models import Delivery  # noqa: E402
from apps.customers.models import Customer  # noqa: E402
from tests.messaging.support import SmtpSink  # noqa: E402

DOMAIN = "bench.example"


def ensure_customers(count: int) -> int:
    have = Customer.objects.filter(email__endswith="@" + DOMAIN).count()
    if have < count:
        Customer.objects.bulk_create(
            [Customer(email=f"b{index}@{DOMAIN}", first_name=f"B{index}") for index in range(have, count)],
            batch_size=5_000,
        )
    return Customer.objects.count()


def bench_workflow() -> Workflow:
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
                    "params": {"subject": "Hi {{ customer.first_name }}", "body": "News", "purpose": "transactional"},
                }
            ],
        },
    )
    return workflow_activate(workflow=workflow)


def bulk_send(workers: int, sink: SmtpSink, timeout: float) -> dict[str, float]:
    env = {
        **os.environ,
        "Q_WORKERS": str(workers),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        "TASKS_SYNC": "false",
    }
    workflow = bench_workflow()
    cluster = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # the cluster's workers are up
        before = len(sink.messages)
        started = time.perf_counter()
        run = bulk.bulk_run_start(workflow=workflow)
        total = Customer.objects.count()
        queued_at = first_sent = None
        deadline = started + timeout
        while time.perf_counter() < deadline:
            sent = len(sink.messages) - before
            if first_sent is None and sent:
                first_sent = time.perf_counter()
            if queued_at is None and WorkflowRun.objects.filter(pk=run.pk, status="succeeded").exists():
                queued_at = time.perf_counter()
            if sent >= total and Delivery.objects.filter(cause=f"bulk_run:{run.pk}", status="sent").count() >= total:
                break
            time.sleep(0.2)
        finished = time.perf_counter()
        sent = len(sink.messages) - before
    finally:
        cluster.terminate()
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
    Delivery.objects.filter(cause=f"bulk_run:{run.pk}").delete()
    Workflow.objects.filter(pk=workflow.pk).update(status="paused")
    elapsed = finished - started
    sending = finished - (first_sent or started)
    return {
        "workers": workers,
        "emails": sent,
        "seconds": elapsed,
        "per_second": sent / elapsed if elapsed else 0.0,
        "queue_seconds": (queued_at or finished) - started,
        "send_per_second": sent / sending if sending else 0.0,
    }


def check_overhead(sample: int) -> tuple[float, float]:
    """Microseconds per message: the set-based decision (bulk) and the single-message decision."""
    customers = list(Customer.objects.order_by("pk")[:sample])
    now = timezone.now()
    started = time.perf_counter()
    decisions = governance.governance_decide_many(
        customers, channel="email", purpose="marketing", priority=0, cause="bench", now=now
    )
    for customer in customers:
        consent.consent_refusal(customer, channel="email", purpose="marketing")
        services.recipient_address(customer, channel="email")
        decisions.get(customer.pk)
    bulk_us = (time.perf_counter() - started) / len(customers) * 1e6
    singles = customers[: min(1_000, len(customers))]
    started = time.perf_counter()
    for customer in singles:
        _, ok = services.recipient_address(customer, channel="email")
        services._decide(customer, channel="email", purpose="marketing", address_ok=ok, priority=0, cause="b", now=now)
    single_us = (time.perf_counter() - started) / len(singles) * 1e6
    return bulk_us, single_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run on PostgreSQL: export DATABASE_URL=postgres://...")
    total = ensure_customers(args.customers)
    print(f"customers: {total}; load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with SmtpSink() as sink:
        for workers in args.workers:
            figures = bulk_send(workers, sink, args.timeout)
            print(
                f"bulk run, {figures['workers']} workers: {figures['emails']} e-mails in {figures['seconds']:.1f} s"
                f" = {figures['per_second']:.0f} e-mails/s end to end (rows queued in {figures['queue_seconds']:.1f} s;"
                f" sending alone {figures['send_per_second']:.0f}/s); load average {os.getloadavg()[0]:.1f}"
            )
    bulk_us, single_us = check_overhead(min(total, 20_000))
    print(
        f"consent + address + governance checks: {bulk_us:.1f} µs/message set-based (bulk),"
        f" {single_us:.1f} µs/message one by one"
    )


if __name__ == "__main__":
    main()
