"""
Benchmark: landing pages, form sign-ups and the storefront widget (not a test).

    [DATABASE_URL=postgres://…/loyalty] .venv/bin/python benchmarks/bench_landing.py [--requests 300]

It creates a throw-away test database (test_<name>) with a program (10 tiers, 24 rewards, 5 earning rules), a
published page with every block, a voucher campaign with a pool of codes and a member, then measures through
Django's test client (the whole request: middleware, view, template), one client at a time:
1. GET /p/<slug>/ (every block);
2. POST /p/<slug>/ — a new visitor signs up (customer, consent, double opt-in e-mail, submission, outbox);
3. GET /w/api/state/ — the widget's launcher for a member;
and prints p50 / p95 / p99 and requests/s for each.
"""

import argparse
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    rate = len(ordered) / sum(ordered)
    figures = f"p50 {pick(0.50):.1f} ms, p95 {pick(0.95):.1f} ms, p99 {pick(0.99):.1f} ms"
    return f"{figures}, {rate:.0f} req/s (n={len(ordered)})"


def timed(call, count: int) -> list[float]:
    samples = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.LANDING_FORM_SUBMISSIONS_PER_HOUR = 10**9
    settings.LOYALTY_WIDGET_ALLOWED_ORIGINS = ["https://shop.example.com"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    from apps.campaigns.landing import services as landing
    from apps.campaigns.landing.blocks import template_blocks
    from apps.campaigns.landing.forms import started_token
    from apps.campaigns.landing.models import FormSubmission
    from apps.campaigns.promotions import services as promotions
    from apps.customers.services import customer_create
    from apps.loyalty import services as loyalty
    from apps.loyalty.models import EarningRule, Program, Reward, Tier
    from apps.loyalty.widget.tokens import widget_token

    program = Program.objects.create(name="Club", slug="club", currency="USD", points_per_unit=Decimal(1))
    for rank in range(10):
        Tier.objects.create(program=program, name=f"Tier {rank}", rank=rank, threshold=rank * 100)
    for index in range(24):
        Reward.objects.create(program=program, name=f"Reward {index}", kind="free_product", points_cost=50 + index)
    for index in range(5):
        EarningRule.objects.create(program=program, name=f"Rule {index}", kind="event", event_name=f"e{index}")
    campaign = promotions.campaign_create(name="Newsletter", type="discount_codes", status="active")
    promotions.codes_generate(campaign=campaign, pattern="NEWS-######", count=args.requests + 10)
    blocks = template_blocks("loyalty")
    blocks[4] = {**blocks[4], "voucher_campaign": campaign.pk}
    blocks.append({"type": "faq", "title": "FAQ", "items": [{"question": f"Q{i}?", "answer": "A."} for i in range(10)]})
    page = landing.landing_page_save(slug="club", title="Club", template="loyalty", blocks=blocks)
    landing.landing_page_publish(page=page)
    member, _ = loyalty.member_join(customer=customer_create(email="member@example.com"), program=program)
    loyalty.points_award(membership=member, points=500, reason="bench")
    token, _ = widget_token(member)
    client = Client()

    def get_page(_: int) -> None:
        assert client.get("/p/club/").status_code == 200

    def sign_up(index: int) -> None:
        started = started_token(time.time() - 10)
        answer = client.post("/p/club/", {"started": started, "email": f"v{index}@example.com", "consent_email": "on"})
        assert answer.status_code == 302, answer.status_code

    def widget_state(_: int) -> None:
        answer = client.get("/w/api/state/", HTTP_ORIGIN="https://shop.example.com", HTTP_X_LOYALTY_WIDGET_TOKEN=token)
        assert answer.status_code == 200

    get_page(0)
    widget_state(0)
    print(f"database: {connection.vendor}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        "GET /p/<slug>/ (every block, 24 rewards, 10 tiers):", percentiles(timed(get_page, args.requests)), flush=True
    )
    print("POST /p/<slug>/ (a new visitor signs up):", percentiles(timed(sign_up, args.requests)), flush=True)
    assert FormSubmission.objects.count() == args.requests
    print("GET /w/api/state/ (widget launcher):", percentiles(timed(widget_state, args.requests)), flush=True)
    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
