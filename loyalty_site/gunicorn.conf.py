"""gunicorn settings for `scripts/run production` (or `gunicorn -c loyalty_site/gunicorn.conf.py loyalty_site.wsgi`).

Threads share each process's database connections (the psycopg pool when DATABASE_POOL_MAX_SIZE is set,
which should then be at least WEB_THREADS).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# Restart a process now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No runtime control socket ($HOME/.gunicorn/gunicorn.ctl is shared by every instance on the host).
control_socket_disable = True
