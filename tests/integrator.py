"""
The integrator's side of end-to-end tests, shared by the gallery-template and state-tag suites: an API client
with a scoped token whose every call runs the worker for what it enqueued (django-q2 in sync mode, on commit),
as in production — or, without `capture`, only enqueues it for a real `qcluster` process (`tests/qcluster.py`)
— plus readers of the resulting tags.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from rest_framework.test import APIClient

from apps.customers.models import Customer
from apps.platform.authentication import token_digest, token_generate
from apps.platform.models import ApiToken
from apps.tagging.models import CustomerTag

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SCOPES = ("ingest", "workflows", "loyalty:write")


class Feed:
    """
    The integrator's API client; each call runs the worker for what it enqueued, as django-q2 would (with
    `capture`, django_capture_on_commit_callbacks), or leaves it to a separate worker process (without).
    """

    def __init__(self, client: APIClient, capture: Any = None) -> None:
        self.client = client
        self.capture = capture

    def worker_inline(self) -> AbstractContextManager:
        return self.capture(execute=True) if self.capture is not None else nullcontext()

    def post(self, url: str, data: dict | None = None, expect: int | tuple = (200, 201)) -> Any:
        with self.worker_inline():
            response = self.client.post(url, data or {}, format="json")
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert response.status_code in expected, response.content
        return response.json()

    def patch(self, url: str, data: dict, expect: int = 200) -> Any:
        with self.worker_inline():
            response = self.client.patch(url, data, format="json")
        assert response.status_code == expect, response.content
        return response.json()

    def get(self, url: str) -> Any:
        response = self.client.get(url)
        assert response.status_code == 200, response.content
        return response.json()

    def install(self, key: str, params: dict | None = None, **extra: Any) -> dict:
        """Install a gallery template and activate it in the same call (state tags are computed at once)."""
        body = {"params": params or {}, "activate": True, **extra}
        return self.post(f"/api/v1/workflow-templates/{key}/install/", body, expect=201)

    def customer(self, external_id: str, **fields: Any) -> Customer:
        payload = self.post("/api/v1/customers/", {"external_id": external_id, **fields})
        return Customer.objects.get(pk=payload["id"])

    def order(self, customer: Customer, total: str, **fields: Any) -> dict:
        lines = fields.pop("lines", None) or [{"title": "Item", "quantity": 1, "unit_price": total}]
        body = {
            "customer_external_id": customer.external_id,
            "currency": fields.pop("currency", "USD"),
            "shipping_country": fields.pop("shipping_country", "US"),
            "lines": lines,
            "total": total,
            **fields,
        }
        if isinstance(body.get("placed_at"), datetime):
            body["placed_at"] = body["placed_at"].isoformat()
        return self.post("/api/v1/orders/", body)

    def cancel(self, order: dict) -> dict:
        return self.post(f"/api/v1/orders/{order['id']}/cancel/")

    def refund(self, order: dict, amount: str) -> dict:
        return self.post(f"/api/v1/orders/{order['id']}/refunds/", {"amount": amount})


def feed_for(user: Any, capture: Any = None, scopes: tuple[str, ...] = SCOPES) -> Feed:
    """
    A Feed acting with a new API token of `user`: with `capture` (and settings.TASKS_SYNC = True) the worker
    runs inline after each call; without, a real qcluster drains what the calls enqueue.
    """
    raw = token_generate()
    ApiToken.objects.create(user=user, name="shop", prefix=raw[:8], digest=token_digest(raw), scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return Feed(client, capture)


def tags(customer: Customer) -> set[str]:
    return set(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


def tagged_with(tag: str) -> set[str]:
    return set(CustomerTag.objects.filter(tag__name=tag).values_list("customer__external_id", flat=True))


def line(title: str, price: str, quantity: int = 1, **extra: Any) -> dict:
    return {"title": title, "quantity": quantity, "unit_price": price, **extra}
