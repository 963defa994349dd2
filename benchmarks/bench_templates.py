"""
Benchmark: rendering message templates with `render_for` (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/templates .venv/bin/python benchmarks/bench_templates.py \
        [--customers 2000]

Creates a throw-away database (test_<name>), `--customers` customers with loyalty balances, and one published
marketing e-mail template (brand layout, Markdown body, three catalog variables, an en and a pt-br variant),
then renders it for every customer: messages/s and the mean time of one `render_for` (its queries included),
split into the database reads and the rendering (Markdown, layout, css-inline, text part). Also an SMS.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")

BODY = """# Hello {{ customer.first_name }}

You have **{{ loyalty.balance }} points**. Your code: {{ voucher.code }}

- Free espresso from 120 points
- [See your rewards](https://shop.example.com/rewards)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    from decimal import Decimal

    from apps.customers.messaging.templating import render_for, template_prepare
    from apps.customers.messaging.templating import services as templates
    from apps.customers.models import Customer
    from apps.loyalty.models import Program
    from apps.loyalty.services import member_join, points_award

    program = Program.objects.create(
        name="Club", slug="club", currency="USD", points_per_unit=Decimal("1"), pending_days=0, expiry_policy="never"
    )
    customers = Customer.objects.bulk_create(
        Customer(email=f"c{i}@example.com", first_name=f"Name{i}", language="pt-br" if i % 3 == 0 else "en")
        for i in range(args.customers)
    )
    for customer in customers[: min(len(customers), 500)]:
        membership, _ = member_join(customer=customer, program=program)
        points_award(membership=membership, points=100, reason="seed")
    templates.brand_update(fields={"name": "Acme", "footer_text": "Acme Ltd", "sender_email": "club@acme.test"})
    email = templates.template_create(
        key="bench",
        name="Bench",
        channel="email",
        purpose="marketing",
        subject="Hi {{ customer.first_name }}",
        body=BODY,
    )
    templates.variant_save(template=email, locale="pt-br", subject="Olá {{ customer.first_name }}", body=BODY)
    templates.template_publish(template=email)
    sms = templates.template_create(
        key="bench-sms", name="SMS", channel="sms", purpose="marketing", subject="", body="Hi {{ customer.first_name }}"
    )
    templates.template_publish(template=sms)

    for key, channel in (("bench", "email"), ("bench-sms", "sms")):
        context = {"payload": {"code": "WELCOME-7KQ2"}}
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            for customer in customers:
                render_for(key, customer, channel=channel, context=context)
            elapsed = time.perf_counter() - started
        db_seconds = sum(float(query["time"]) for query in queries.captured_queries)
        print(
            f"{channel}: {len(customers)} messages in {elapsed:.2f} s = {len(customers) / elapsed:.0f} messages/s; "
            f"{elapsed / len(customers) * 1000:.2f} ms each, of which {db_seconds / len(customers) * 1000:.2f} ms "
            f"in {len(queries.captured_queries) / len(customers):.1f} queries"
        )
    # A bulk send reads the template once and renders it for each customer.
    context = {"payload": {"code": "WELCOME-7KQ2"}}
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        prepared = template_prepare("bench", channel="email")
        for customer in customers:
            prepared.render(customer, context=context)
        elapsed = time.perf_counter() - started
    print(
        f"email, prepared once: {len(customers) / elapsed:.0f} messages/s; {elapsed / len(customers) * 1000:.2f} ms "
        f"each, {len(queries.captured_queries) / len(customers):.1f} queries each (the loyalty balance)"
    )
    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
