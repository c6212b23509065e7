"""Celery app in Celery's documented Django layout: `celery -A xrayweb worker` runs a worker."""

import os
from typing import Any

from celery import Celery
from celery.worker.control import inspect_command

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xrayweb.settings")

app = Celery("xrayweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # each installed app's tasks.py: diagnosis.tasks


@inspect_command()
def model(state: Any) -> dict[str, Any]:
    """The worker's inference runtime and model, its file checked (`celery -A xrayweb inspect model`: the health
    check of docker-compose.yml's workers). Registered here, where the command line finds it too."""
    from diagnosis import predictor

    return predictor.health()
