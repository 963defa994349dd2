"""gunicorn settings for `scripts/run production` (or `gunicorn -c loyalty_site/gunicorn.conf.py loyalty_site.wsgi`).

Threads share each process's database connections (the psycopg pool when DATABASE_POOL_MAX_SIZE is set,
which should then be at least WEB_THREADS).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# gunicorn's "gthread", with the keep-alive connections spread evenly over the processes (see the module).
worker_class = "loyalty_site.gunicorn_worker.BalancedThreadWorker"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# Restart a process now and then so a slow leak cannot grow without bound. The jitter spreads the restarts: with
# 10 % the processes of an evenly loaded server reached their limits together (benchmarks/bench_production.py).
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 2
# The application is imported once, in the master: a replacement process forks ready instead of setting Django
# up again while requests wait (1.6-3.7 s of maximum latency at 250-330 requests/s without it). Nothing opens a
# database connection at import, so no connection is shared across the fork. A code deploy restarts gunicorn
# (SIGHUP re-reads this file, not the code).
preload_app = True
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No runtime control socket ($HOME/.gunicorn/gunicorn.ctl is shared by every instance on the host).
control_socket_disable = True
