"""The default cache (API throttles, link rate limits) is shared across processes when CACHE_URL says so."""

import json

from tests.ops.test_settings import ROOT, os, subprocess, sys

PRINT_CACHE = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.CACHES['default']))"
)


def cache_of(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "SECRET_KEY"}}
    clean.update(DJANGO_SETTINGS_MODULE="loyalty_site.settings.test", **env)
    result = subprocess.run(
        [sys.executable, "-c", PRINT_CACHE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    return json.loads(result.stdout)


def test_without_cache_url_each_process_counts_in_its_own_memory():
    assert cache_of()["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_cache_url_on_redis_shares_the_counters():
    cache = cache_of(CACHE_URL="redis://127.0.0.1:6379/1")

    assert (cache["BACKEND"], cache["LOCATION"]) == (
        "django.core.cache.backends.redis.RedisCache",
        "redis://127.0.0.1:6379/1",
    )
