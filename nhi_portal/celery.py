"""The Celery app: configured from Django settings under the CELERY_ namespace."""

import os

from celery import Celery

# Like wsgi.py: production unless told otherwise; `make run` and the tests name their settings explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nhi_portal.settings.production")

app = Celery("nhi_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
