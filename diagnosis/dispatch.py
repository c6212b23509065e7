"""Publishing jobs to the broker, and reading the broker's inference queue: the only module that sends RUN_INFERENCE.

A job is QUEUED in the database before its message is sent, so a message that is never sent loses nothing: the
sweeper (jobs.requeue_stale_jobs) sends it later. Every broker operation is time-limited in settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from amqp.exceptions import ChannelError
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from diagnosis.models import InferenceJob, JobStatus
from diagnosis.task_names import INFERENCE_QUEUE, RUN_INFERENCE

logger = logging.getLogger(__name__)

# After a failed publish, sends are skipped for this long (the jobs stay QUEUED for the sweeper), so that one
# request of many files, or many requests, do not each wait for the broker's timeout while it is stalled.
BROKER_PAUSE_SECONDS = 5.0
# Celery copies a task's time limits into every message sent by name, and a worker obeys the message's first:
# the sender's INFERENCE_BATCH_SIZE would then set the limit of a worker that runs bigger batches (a GPU worker's
# 128 behind a web server's 32). None leaves each worker its own limit (settings.INFERENCE_TASK_TIME_LIMIT).
_WORKER_LIMITS: dict[str, Any] = {"time_limit": None, "soft_time_limit": None}


class _Pause:
    """Until when this process sends nothing (time.monotonic), after the broker failed."""

    until = 0.0


pause = _Pause()


def send(*job_ids: int, per_message: int = 1, countdown: int | None = None) -> None:
    """Publish the job ids, `per_message` to a message, through one producer (`countdown`: seconds before a worker
    may take them). Returns or raises within about BROKER_SOCKET_TIMEOUT even when Redis is stalled; a job not
    sent stays QUEUED and the sweeper sends it."""
    if time.monotonic() < pause.until:
        logger.warning("jobs %s not sent: the broker failed moments ago; the sweeper will send them", job_ids)
        _due_for_the_sweeper(job_ids)
        return
    try:
        with current_app.producer_or_acquire() as producer:
            for i in range(0, len(job_ids), per_message):
                args = list(job_ids[i : i + per_message])
                current_app.send_task(
                    RUN_INFERENCE, args=args, producer=producer, countdown=countdown, **_WORKER_LIMITS
                )
    except Exception:
        pause.until = time.monotonic() + BROKER_PAUSE_SECONDS
        _due_for_the_sweeper(job_ids)
        raise


def send_later(job_id: int, countdown: int) -> None:
    """send(), for a job back in the queue after a transient error; should the broker fail, the sweeper sends it."""
    try:
        send(job_id, countdown=countdown)
    except Exception:
        logger.warning("job %s not re-sent; the sweeper will send it", job_id, exc_info=True)


def _due_for_the_sweeper(job_ids: Sequence[int]) -> None:
    """Jobs whose message was not sent are dated as if queued QUEUED_STALE_SECONDS ago, so that the sweeper's next
    round sends them (within SWEEP_INTERVAL) instead of after QUEUED_STALE_SECONDS: a study submitted while Redis
    stalls would otherwise wait minutes. Best effort: the database may be down too."""
    due = timezone.now() - timedelta(seconds=settings.QUEUED_STALE_SECONDS + 1)
    try:
        InferenceJob.objects.filter(pk__in=job_ids, status=JobStatus.QUEUED).update(enqueued_at=due)
    except DatabaseError:
        logger.warning("jobs %s could not be marked for the sweeper: it sends them when they are stale", job_ids)


def enqueue_many(job_ids: list[int]) -> None:
    """Send the job ids to the inference queue once the surrounding transaction has committed, half a batch
    (INFERENCE_BATCH_SIZE / 2) to a message. A message's task claims the jobs it names first, so the other half of
    its batch is left to the fair order (diagnosis.batching: interactive studies, other clinics); one message a job
    would make most messages no-ops. robust: if the broker is down the studies are stored, and the sweeper sends
    them later."""
    if job_ids:
        per_message = max(1, settings.INFERENCE_BATCH_SIZE // 2)
        transaction.on_commit(lambda: send(*job_ids, per_message=per_message), robust=True)


def inference_backlog() -> int:
    """Messages waiting in the broker's inference queue (0 when it cannot be read: then re-send to be safe)."""
    try:
        with current_app.connection_for_write() as conn:
            channel: Any = conn.default_channel
            return int(channel.queue_declare(queue=INFERENCE_QUEUE, passive=True).message_count)
    except ChannelError:  # Redis drops an empty list's key: the queue "does not exist" when it is empty
        return 0
    except Exception:  # a broker hiccup
        logger.warning("sweeper: could not read the inference queue length", exc_info=True)
        return 0
