"""
Consent benchmark (PostgreSQL or SQLite). Not a test: prints figures.

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/consent_bench?conn_max_age=600"
    .venv/bin/python manage.py migrate
    .venv/bin/python benchmarks/bench_consent.py --customers 200000

Loads N customers (bulk inserts, no triggers: like `generate_data`), gives a tenth of them explicit
consent rows (granted / pending / withdrawn, e-mail and SMS) and suppresses 1 % of their addresses, then
measures, everything rolled back at the end:

  1. `customers_allowed` (the set-based rule a bulk send uses) for each channel x purpose: one COUNT over
     all customers — the time and the count;
  2. `allows` (one customer, the rule a single send uses): p50 / p95 / p99 over 2,000 random customers;
  3. `consent_set` (an audited change with its history row and the mirror): p50 / p95 over 500 changes.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.dev")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from apps.customers.consent import services as consent  # noqa: E402
from apps.customers.consent.models import Consent, Suppression  # noqa: E402
from apps.customers.models import Customer  # noqa: E402


class Rollback(Exception):
    pass


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {pick(0.5):.2f} ms · p95 {pick(0.95):.2f} ms · p99 {pick(0.99):.2f} ms"


def load(count: int, rng: random.Random) -> list[int]:
    started = time.perf_counter()
    batch = 5000
    for start in range(0, count, batch):
        Customer.objects.bulk_create(
            [
                Customer(
                    external_id=f"bench-consent-{index}",
                    email=f"c{index}@bench.example",
                    phone=f"+1555{index:07d}",
                    accepts_marketing=rng.random() < 0.7,
                )
                for index in range(start, min(count, start + batch))
            ]
        )
    ids = list(Customer.objects.filter(external_id__startswith="bench-consent-").values_list("pk", flat=True))
    rows = []
    for pk in rng.sample(ids, len(ids) // 10):
        for channel in ("email", "sms"):
            rows.append(
                Consent(
                    customer_id=pk,
                    channel=channel,
                    purpose="marketing",
                    status=rng.choice(["granted", "granted", "pending", "withdrawn"]),
                    source="bench",
                )
            )
    Consent.objects.bulk_create(rows, batch_size=5000)
    Suppression.objects.bulk_create(
        [
            Suppression(address=f"c{index}@bench.example", channel="email", reason="hard_bounce")
            for index in rng.sample(range(count), count // 100)
        ],
        batch_size=5000,
    )
    took = time.perf_counter() - started
    print(f"loaded {count:,} customers, {len(rows):,} consent rows, {count // 100:,} suppressions in {took:.1f} s")
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"database: {connection.vendor}; load average: {os.getloadavg()}")
    try:
        with transaction.atomic():
            ids = load(args.customers, rng)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "ANALYZE customers_customer; ANALYZE customers_consent; ANALYZE customers_suppression"
                    )
            everyone = Customer.objects.all()
            for channel in ("email", "sms", "in_app"):
                for purpose in ("marketing", "transactional"):
                    started = time.perf_counter()
                    allowed = consent.customers_allowed(everyone, channel=channel, purpose=purpose).count()
                    elapsed = time.perf_counter() - started
                    label = f"customers_allowed {channel:6} {purpose:13}"
                    print(f"{label}: {allowed:>9,} of {len(ids):,} in {elapsed * 1000:8.1f} ms")
            customers = list(Customer.objects.filter(pk__in=rng.sample(ids, 2000)))
            samples = []
            for customer in customers:
                started = time.perf_counter()
                consent.allows(customer, channel="email", purpose="marketing")
                samples.append(time.perf_counter() - started)
            print(f"allows (one customer, e-mail marketing), 2,000 calls: {percentiles(samples)}")
            samples = []
            for customer in customers[:500]:
                started = time.perf_counter()
                consent.consent_set(
                    customer=customer, channel="sms", purpose="marketing", status="granted", source="bench"
                )
                samples.append(time.perf_counter() - started)
            print(f"consent_set (audited, history, mirror), 500 changes: {percentiles(samples)}")
            raise Rollback
    except Rollback:
        print("rolled back")


if __name__ == "__main__":
    main()
