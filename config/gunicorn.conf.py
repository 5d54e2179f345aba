"""gunicorn settings for the web service (docker-compose `web`, bench/serve.py).

Sized for the machine it runs on: a request spends much of its time waiting on Postgres,
so two processes per core with a few threads each keep the cores busy. Each thread keeps
one persistent database connection (DATABASE_CONN_MAX_AGE), so workers x threads must stay
under Postgres' max_connections (100 by default) together with the Celery workers.
Override with WEB_CONCURRENCY and GUNICORN_THREADS.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
worker_class = "gthread"
timeout = 60
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
