"""gunicorn settings for production: `gunicorn -c python:operations.gunicorn nhi_portal.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics to files in that directory and /metrics adds them
up; when a worker exits, its live gauges must be dropped (prometheus-client's multiprocess mode). Empty the directory
before gunicorn starts: files from a previous run would count twice.
"""

import os

from prometheus_client import multiprocess

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
