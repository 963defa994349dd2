import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.customers.models import (
    Cart,
    Customer,
    CustomerEvent,
    DomainEvent,
    DraftOrder,
    Order,
    Product,
    Refund,
    Store,
)
from apps.tagging.models import CustomerTag, ProductTag

pytestmark = pytest.mark.django_db


def _load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def _counts() -> dict[str, int]:
    models = [
        Customer,
        Product,
        Order,
        Refund,
        Cart,
        DraftOrder,
        CustomerEvent,
        Store,
        DomainEvent,
        CustomerTag,
        ProductTag,
    ]
    return {model.__name__: model.objects.count() for model in models}


def test_load_demo_is_idempotent_and_prints_the_admin_login(monkeypatch, settings, tmp_path):
    settings.BASE_DIR = tmp_path
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-secret-42")
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)

    first = _load()
    counts = _counts()
    second = _load()

    assert _counts() == counts
    assert counts["Customer"] == 12
    assert counts["Store"] == 2
    assert counts["Refund"] == 2
    assert counts["Cart"] == 3
    assert DraftOrder.objects.count() == 1
    assert Order.objects.filter(channel="pos").count() == 3
    assert set(Customer.objects.values_list("preferred_currency", flat=True)) == {"EUR", "GBP", "USD", "JPY"}
    assert ProductTag.objects.filter(tag__name="Kids & Baby").count() == 4
    expected = "Admin login: http://127.0.0.1:8000/admin/  user: admin  password: demo-secret-42"
    assert first.splitlines()[-1] == second.splitlines()[-1] == expected
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("demo-secret-42")
    assert not (tmp_path / "var" / "admin-password.txt").exists()


def test_load_demo_generates_the_admin_password_once_into_a_private_file(monkeypatch, settings, tmp_path):
    settings.BASE_DIR = tmp_path
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9000")

    first = _load().splitlines()[-1]
    second = _load().splitlines()[-1]

    password_file = tmp_path / "var" / "admin-password.txt"
    password = password_file.read_text().strip()
    assert first == second == f"Admin login: http://0.0.0.0:9000/admin/  user: admin  password: {password}"
    assert len(password) >= 12
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_load_demo_summary_figures_match_a_recompute(settings, tmp_path):
    from apps.customers.services import customer_summary_recompute

    settings.BASE_DIR = tmp_path
    call_command("load_demo", "--no-admin", stdout=StringIO())
    kept = {c.pk: (c.orders_count, c.total_spent, c.refunded_total) for c in Customer.objects.all()}

    for customer in Customer.objects.all():
        customer_summary_recompute(customer=customer)

    assert {c.pk: (c.orders_count, c.total_spent, c.refunded_total) for c in Customer.objects.all()} == kept
