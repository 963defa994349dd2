"""
Benchmark: what the web stack's pieces cost per API request, each beside what it replaced (README, "The API stack").

    .venv/bin/python benchmarks/bench_api_stack.py [--repeat 5]

No database: production settings with throw-away keys, the local-memory cache. Each line is µs per call, the best
of `--repeat` runs (run it under `flock /work/bench.lock nice -n 19` on a shared host; compare lines of one run):

- the Content-Security-Policy middleware: django-csp's own, and loyalty_site.lib.csp's (policy built once);
- the message middleware: Django's, and loyalty_site.lib.messages's (storage made on first use);
- a throttle check: DRF's SimpleRateThrottle with 0, 1200 (the default token rate, full) and 20000 timestamps in
  its list, and the sliding-window counter of apps/platform/throttling.py;
- gunicorn's access line: gunicorn's Logger and loyalty_site.gunicorn_worker.AccessLogger;
- the per-request copies of the cached token and user: copy.copy and authentication._instance_copy.
"""

import argparse
import copy
import datetime
import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def timed(label: str, call: Callable[[], Any], *, number: int, repeat: int) -> None:
    best = min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6
    print(f"{label:58s} {best:8.1f} µs", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.production",
            "SECRET_KEY": "bench-" * 10,
            "FIELD_ENCRYPTION_KEY": "Fh1q0pVbH3X0b1m8cZl9nI8cN0pJv1yQe2m6sTQ3c0k=",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "CACHE_URL": "locmemcache://",
        }
    )
    import django

    django.setup()
    import csp.middleware
    from django.contrib.auth import get_user_model
    from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.cache import cache
    from django.http import JsonResponse
    from django.test import RequestFactory
    from gunicorn.config import Config
    from gunicorn.glogging import Logger
    from rest_framework.request import Request
    from rest_framework.throttling import SimpleRateThrottle

    from apps.platform.authentication import _instance_copy
    from apps.platform.models import ApiToken
    from apps.platform.throttling import IPRateThrottle
    from loyalty_site.gunicorn_worker import AccessLogger
    from loyalty_site.lib.csp import CSPMiddleware
    from loyalty_site.lib.messages import MessageMiddleware

    def run(label: str, call: Callable[[], Any], number: int = 3000) -> None:
        timed(label, call, number=number, repeat=args.repeat)

    factory = RequestFactory()

    def through(middleware: Any, *, session: bool = False) -> Callable[[], None]:
        def call() -> None:
            request = factory.get("/api/v1/customers/")
            if session:
                request.session = SessionStore()
            middleware.process_request(request)
            middleware.process_response(request, JsonResponse({"ok": True}))

        return call

    run("a request and a JSON response alone (subtract from the next 4)", lambda: factory.get("/") and JsonResponse({}))
    run("CSP: django-csp", through(csp.middleware.CSPMiddleware(lambda request: None)))
    run("CSP: loyalty_site.lib.csp (policy built once)", through(CSPMiddleware(lambda request: None)))
    run("messages: Django's (+ a session store)", through(DjangoMessageMiddleware(lambda r: None), session=True))
    run(
        "messages: loyalty_site.lib.messages (+ a session store)",
        through(MessageMiddleware(lambda r: None), session=True),
    )

    class ListThrottle(SimpleRateThrottle):
        rate = "1000000/min"

        def get_cache_key(self, request: Any, view: Any) -> str:
            return "bench_list"

    class CounterThrottle(IPRateThrottle):
        def get_rate(self) -> str:
            return "1000000/min"

    request = Request(factory.get("/api/v1/customers/"))
    request._user, request._auth = None, None  # (no authentication: the IP throttle applies)
    for size in (0, 1200, 20000):
        cache.set("bench_list", [9e12] * size, 600)  # timestamps in the future: none is trimmed
        run(
            f"throttle: DRF's list of timestamps, {size} in it",
            lambda: ListThrottle().allow_request(request, None),
            number=300 if size > 5000 else 2000,
        )
    run(
        "throttle: apps.platform.throttling's counter (any rate)",
        lambda: CounterThrottle().allow_request(request, None),
    )

    config = Config()
    config.set("accesslog", os.devnull)
    response = SimpleNamespace(
        status="200 OK", sent=11772, headers=[("Content-Type", "application/json"), ("Content-Length", "11772")]
    )
    headers = [("HOST", "127.0.0.1:8000"), ("AUTHORIZATION", "Bearer lsk_x"), ("USER-AGENT", "python-requests/2.32")]
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/api/v1/promotions/validate",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/api/v1/promotions/validate",
        "HTTP_USER_AGENT": "python-requests/2.32",
        "HTTP_AUTHORIZATION": "Bearer lsk_x",
        **{f"wsgi.extra{index}": "-" for index in range(20)},  # (gunicorn's environ has ~30 entries)
    }
    elapsed = datetime.timedelta(milliseconds=5)
    for logger_class in (Logger, AccessLogger):
        logger = logger_class(config)
        run(
            f"access line: {logger_class.__module__}.{logger_class.__name__}",
            lambda logger=logger: logger.access(response, SimpleNamespace(headers=headers), environ, elapsed),
        )

    user = get_user_model()(pk=1, username="bench")
    token = ApiToken(pk=1, user=user, scopes=["campaigns"], digest="0" * 64)
    run("token + user copies: copy.copy", lambda: (copy.copy(token), copy.copy(user)))
    run("token + user copies: authentication._instance_copy", lambda: (_instance_copy(token), _instance_copy(user)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
