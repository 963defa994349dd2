"""gunicorn settings for `scripts/run production` (or `gunicorn -c loyalty_site/gunicorn.conf.py loyalty_site.wsgi`).

Threads share each process's database connections (the psycopg pool when DATABASE_POOL_MAX_SIZE is set,
which should then be at least WEB_THREADS).
"""

import gc
import os
from typing import Any

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# gunicorn's "gthread", with the keep-alive connections spread evenly over the processes (see the module).
worker_class = "loyalty_site.gunicorn_worker.BalancedThreadWorker"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# Restart a process now and then so a slow leak cannot grow without bound. The jitter spreads the restarts: with
# 10 % the processes of an evenly loaded server reached their limits together (benchmarks/bench_production.py).
# 2000 restarted each process every 6-9 s at 330 requests/s (a benchmark run of a few thousand requests could
# meet a restart: a new database connection, its statements prepared again, the promotion set and the token
# cache read again); 100000 is every 5-8 minutes at that rate, still bounding a leak.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 2
# The application is imported once, in the master: a replacement process forks ready instead of setting Django
# up again while requests wait (1.6-3.7 s of maximum latency at 250-330 requests/s without it). Nothing opens a
# database connection at import, so no connection is shared across the fork. A code deploy restarts gunicorn
# (SIGHUP re-reads this file, not the code).
preload_app = True
accesslog = "-"
# The same access line as gunicorn's, written for less CPU (loyalty_site/gunicorn_worker.py, AccessLogger).
logger_class = "loyalty_site.gunicorn_worker.AccessLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No runtime control socket ($HOME/.gunicorn/gunicorn.ctl is shared by every instance on the host).
control_socket_disable = True


# Python's cyclic garbage collector. With the application preloaded, the master holds ~180000 long-lived objects
# (modules, classes, URL patterns, settings) that every process inherits. A full collection in a process walks all
# of them (a pause of tens of ms in the middle of some request) and writes to each object's GC header, which
# copies the memory pages it shared with the master. `gc.freeze()` right before each fork moves them out of the
# collector's sight: a process's collections look only at what it allocated itself. (Per-request garbage — the
# request/response cycles — is still collected as before: a young-generation collection about once a request.)
def when_ready(server: Any) -> None:
    gc.collect()  # (nothing unreachable is frozen)
    gc.freeze()


def pre_fork(server: Any, worker: Any) -> None:
    gc.freeze()  # (also for a replacement process: whatever the master allocated since)
