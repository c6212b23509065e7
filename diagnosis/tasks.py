"""Celery tasks (found by autodiscover_tasks): each takes ids and calls one service. acks_late and
reject-on-worker-lost are set for every task in settings."""

from __future__ import annotations

import threading
from typing import Any

from celery import current_app, shared_task
from celery.signals import worker_process_init
from django.conf import settings

from diagnosis import dispatch, housekeeping, jobs, liveness, pacs, pipeline, predictor
from diagnosis.site import monitoring
from diagnosis.task_names import (
    INFERENCE_QUEUE,
    MONITOR_SITES,
    PRUNE_ORPHAN_FILES,
    RUN_INFERENCE,
    SEND_RESULTS,
    SEND_REVIEW,
    SWEEP_STALE_JOBS,
)


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Start loading the model as soon as an inference worker's child exists, so the first study does not wait
    for it. A worker that does not consume the inference queue (the maintenance worker) never loads it."""
    if INFERENCE_QUEUE not in set(current_app.amqp.queues.consume_from):
        return
    threading.Thread(target=predictor.get_predictor, name="model-warm-up", daemon=True).start()


@shared_task(
    name=RUN_INFERENCE,
    bind=True,
    time_limit=settings.INFERENCE_TASK_TIME_LIMIT,
    soft_time_limit=pipeline.soft_time_limit(),
)
def run_inference(self: Any, job_id: int, *more: int) -> str:
    """Judge the named jobs and, up to INFERENCE_BATCH_SIZE, others in the fair order (diagnosis.pipeline)."""
    return pipeline.run_batches([job_id, *more], liveness.worker_id(self.request.hostname or ""))


@shared_task(name=SWEEP_STALE_JOBS)
def sweep_stale_jobs() -> int:
    live = liveness.live_workers() if jobs.running_past_grace() else None  # None: no holder needs asking after
    requeued = jobs.requeue_stale_jobs(requeue_queued=dispatch.inference_backlog() == 0, live_nodes=live)
    pacs.redrive()
    return len(requeued)


@shared_task(name=PRUNE_ORPHAN_FILES)
def prune_orphan_files() -> int:
    run = housekeeping.prune_orphan_files()
    return len(run.orphans) if run.removed else 0


@shared_task(name=MONITOR_SITES)
def monitor_sites() -> int:
    return len(monitoring.run_daily())


@shared_task(name=SEND_RESULTS)
def send_results(study_id: str) -> str:
    return str(pacs.send(study_id).status)


@shared_task(name=SEND_REVIEW)
def send_review(send_id: int) -> str:
    return str(pacs.send_review(int(send_id)).status)
