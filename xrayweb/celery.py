"""Celery app in Celery's documented Django layout: `celery -A xrayweb worker` runs a worker."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xrayweb.settings")

app = Celery("xrayweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # each installed app's tasks.py: diagnosis.tasks
