"""Celery app in Celery's documented Django layout: `celery -A xrayweb worker` runs a worker."""

import os
import signal
from typing import Any

from celery import Celery
from celery.signals import beat_embedded_init, worker_init
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


class _Worker:
    pid = 0  # the worker's main process, recorded before it forks its beat


@worker_init.connect
def _record_the_worker(**_: Any) -> None:
    _Worker.pid = os.getpid()


@beat_embedded_init.connect
def _beat_ends_with_its_worker(**_: Any) -> None:
    """The sweeper's beat embedded in a worker (-B) is a child process, which the worker stops with SIGTERM as it
    shuts down. A worker stopped while it starts sends that signal before the child has its handlers, and exits;
    its beat went on alone, sending sweeps for minutes. So the kernel sends the beat SIGTERM when its worker goes,
    for whatever reason (Linux; elsewhere it keeps Celery's behaviour), and a beat whose worker went first exits."""
    from billiard.util import set_pdeathsig  # type: ignore[attr-defined]  # in billiard, not in its stubs

    try:
        set_pdeathsig(signal.SIGTERM)
    except OSError:
        return
    if os.getppid() != _Worker.pid:
        signal.raise_signal(signal.SIGTERM)
