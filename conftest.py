"""Test-wide set-up shared by every test package."""

import os

import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a thread
# with a running loop unless told this is fine (it is: the loop belongs to the browser driver).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


@pytest.fixture
def cache_cleared():
    """The default cache (rate-limit counters, the API auth cache) empty before and after the test; a module
    asks for it with `pytest.mark.usefixtures("cache_cleared")`."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sync(settings, django_capture_on_commit_callbacks):
    """Outbox consumers (and mail) run right after each commit: the worker, inline. `sync(lambda: write())`."""
    settings.TASKS_SYNC = True

    def run(write):
        with django_capture_on_commit_callbacks(execute=True):
            return write()

    return run


ARTIFACTS_DIR = os.path.join(os.path.dirname(__file__), "test-artifacts")


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole session, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.path.exists(executable):
        pytest.skip(f"Chromium not found at {executable} (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) at 1280x900, closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under test-artifacts/ (not committed): screenshot("builder")."""
    os.makedirs(ARTIFACTS_DIR, exist_ok=True)

    def take(name: str, target=None) -> str:
        path = os.path.join(ARTIFACTS_DIR, f"{name}.png")
        (target or page).screenshot(path=path, full_page=True)
        return path

    return take


# Currencies the suite's orders use besides the shop currency (USD). Tests about something other than
# conversion get rate 1 for them (dated long ago), so the totals they assert stay the amounts they
# sent; money tests load their own rates (a later day wins: the latest rate on or before a record's
# day applies) or use a currency outside this list to meet "no exchange rate".
PARITY_CURRENCIES = ("EUR", "GBP", "JPY", "VND")


@pytest.fixture(autouse=True)
def exchange_rates_at_parity(request):
    if request.node.get_closest_marker("django_db") is None and "_django_db_helper" not in request.fixturenames:
        return
    request.getfixturevalue("_django_db_helper")
    from datetime import date
    from decimal import Decimal

    from apps.customers.models import ExchangeRate

    ExchangeRate.objects.bulk_create(
        [
            ExchangeRate(currency=code, day=date(2000, 1, 1), rate=Decimal("1"), source="test parity")
            for code in PARITY_CURRENCIES
        ],
        ignore_conflicts=True,
    )
