"""
Demo workflows for `manage.py load_demo`: a few gallery templates installed *active*, with real runs (a new
demo order runs the order workflows; the state tags are computed for every customer on activation), instead of
every template as a draft. The gallery is where new ones come from.
Idempotent: a workflow already installed under its template's name is left alone.
"""

from datetime import timedelta
from typing import TextIO

from django.utils import timezone

from apps.customers.models import Customer, Product
from apps.customers.services import LineInput, order_create

from . import gallery
from .models import Workflow
from .services import workflow_activate

# An order-created example that the demo order below runs, and state tags (computed on activation).
ACTIVE_EXAMPLES = ("first_time_buyer", "high_value", "repeat_buyer", "inactive_high_value")
DEMO_ORDER = "demo-o-console-1"


def load(*, stdout: TextIO) -> None:
    installed = []
    for key in ACTIVE_EXAMPLES:
        spec = gallery.TEMPLATES[key]
        if Workflow.objects.filter(name=spec.name).exists():
            continue
        workflow = gallery.template_install(key=key, params={}, user=None)
        workflow_activate(workflow=workflow, user=None)
        installed.append(spec.name)
    if installed:
        stdout.write(f"  workflows: {', '.join(installed)} (active)\n")

    # A fresh order through the services: the active order workflows run on it (the worker picks it up).
    # Placed by a demo customer without orders, so the first-time-buyer workflow acts (a run that succeeds).
    customer = (
        Customer.objects.filter(orders__external_id=DEMO_ORDER).first()
        or Customer.objects.filter(external_id__startswith="demo-c-", orders_count=0).order_by("external_id").first()
    )
    product = Product.objects.filter(external_id="demo-p-headphones").first()
    if customer is not None and product is not None:
        line = LineInput(title=product.title, quantity=1, unit_price=product.price, product=product)
        order_create(
            customer=customer,
            currency=customer.preferred_currency or "EUR",
            lines=[line],
            external_id=DEMO_ORDER,
            placed_at=timezone.now() - timedelta(minutes=5),
            cause="demo",
        )
