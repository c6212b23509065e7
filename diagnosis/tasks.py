"""Celery tasks (found by autodiscover_tasks): thin. Claim the job, call the ML package, record the outcome
through diagnosis.jobs. acks_late and reject-on-worker-lost are set for every task in settings.

TensorFlow is imported only when a worker child first needs the model (never in the web process,
never in the worker's parent before fork); the model is loaded once per child.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from amqp.exceptions import ChannelError
from celery import current_app, shared_task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from celery.signals import worker_process_init
from django.conf import settings
from django.db import DatabaseError

from diagnosis import jobs, pacs
from diagnosis.task_names import INFERENCE_QUEUE, RUN_INFERENCE, SEND_RESULTS, SWEEP_STALE_JOBS
from worker.ml.preprocessing import ImageRejected

logger = logging.getLogger(__name__)
_predictor: Any = None
_lock = threading.Lock()


def get_predictor() -> Any:
    global _predictor
    with _lock:
        if _predictor is None:
            from worker.ml.inference import Predictor
            from worker.ml.spec import ModelSpec

            _predictor = Predictor(ModelSpec.load(settings.MODEL_DIR))
            logger.info("model %s loaded", _predictor.spec.version)
        return _predictor


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Start loading the model as soon as a worker child exists, so the first study does not wait for it."""
    threading.Thread(target=get_predictor, name="model-warm-up", daemon=True).start()


@shared_task(
    name=RUN_INFERENCE,
    bind=True,
    max_retries=5,
    time_limit=settings.INFERENCE_TIME_LIMIT,
    soft_time_limit=settings.INFERENCE_TIME_LIMIT - 5,
)
def run_inference(self: Any, job_id: int) -> str:
    worker = jobs.worker_id(self.request.hostname or "")
    job = jobs.claim_job(job_id, worker)
    if job is None:
        return "skipped: not queued"
    try:
        return _judge(self, job, worker)
    except Retry:
        raise
    except SoftTimeLimitExceeded:
        jobs.fail_job(job_id, f"Processing took longer than {settings.INFERENCE_TIME_LIMIT - 5} s; it was stopped.")
        return "failed"
    except Exception as exc:  # whatever goes wrong, the job ends FAILED with a reason, never stuck RUNNING
        logger.exception("inference failed for job %s", job_id)
        jobs.fail_job(job_id, f"Inference failed: {type(exc).__name__}: {exc}")
        return "failed"


def _judge(task: Any, job: Any, worker: str) -> str:
    try:
        data = jobs.read_original(job)
    except jobs.OriginalMissing as exc:
        jobs.fail_job(job.pk, str(exc))
        return "failed"
    except (OSError, DatabaseError) as exc:  # storage or database hiccup: transient, retry with backoff
        if task.request.retries >= task.max_retries:
            jobs.fail_job(job.pk, f"The original image could not be read: {type(exc).__name__}: {exc}")
            return "failed"
        jobs.release_job(job.pk, worker)
        raise task.retry(exc=exc, countdown=min(60, 2**task.request.retries)) from exc
    try:
        prediction = get_predictor().predict(data, settings.MAX_IMAGE_PIXELS)
    except ImageRejected as exc:
        jobs.reject_job(job.pk, str(exc))
        return "rejected"
    if jobs.record_result(job, prediction) is None:
        return "skipped: already final"
    pacs.schedule(job.study_id)  # a DICOM study from a peer that takes results: send them back
    return "done"


@shared_task(name=SWEEP_STALE_JOBS)
def sweep_stale_jobs() -> int:
    requeued = jobs.requeue_stale_jobs(requeue_queued=inference_backlog() == 0, live_nodes=live_workers())
    pacs.redrive()
    return len(requeued)


@shared_task(name=SEND_RESULTS)
def send_results(study_id: str) -> str:
    return str(pacs.send(study_id).status)


def live_workers() -> set[str] | None:
    """The Celery nodes that answer a ping now (None when the broker cannot be asked)."""
    try:
        replies = current_app.control.ping(timeout=1.0)
    except Exception:
        logger.warning("sweeper: could not ping the workers", exc_info=True)
        return None
    return {node for reply in replies or [] for node in reply}


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
