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

from diagnosis import batching, jobs, pacs
from diagnosis.task_names import INFERENCE_QUEUE, RUN_INFERENCE, SEND_RESULTS, SEND_REVIEW, SWEEP_STALE_JOBS
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

            _predictor = Predictor(
                ModelSpec.load(settings.MODEL_DIR), settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_THREADS
            )
            logger.info("model %s loaded", _predictor.spec.version)
        return _predictor


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Start loading the model as soon as an inference worker's child exists, so the first study does not wait
    for it. A worker that does not consume the inference queue (the maintenance worker) never loads it."""
    from celery import current_app

    if INFERENCE_QUEUE not in set(current_app.amqp.queues.consume_from):
        return
    threading.Thread(target=get_predictor, name="model-warm-up", daemon=True).start()


@shared_task(
    name=RUN_INFERENCE,
    bind=True,
    max_retries=5,
    time_limit=settings.INFERENCE_TASK_TIME_LIMIT,
    soft_time_limit=settings.INFERENCE_TASK_TIME_LIMIT - 5,
)
def run_inference(self: Any, job_id: int, *more: int) -> str:
    """INFERENCE_BATCH_SIZE > 1: judge the named jobs and the rest of a batch in the fair order
    (diagnosis.batching); 1: this job alone (the per-job path, kept as the baseline), the others named sent on
    one a message."""
    worker = jobs.worker_id(self.request.hostname or "")
    if settings.INFERENCE_BATCH_SIZE > 1:
        return _run_batch([job_id, *more], worker)
    if more:
        try:
            jobs.send(*more)
        except Exception:  # they are QUEUED: the sweeper sends them
            logger.warning("jobs %s not re-sent; the sweeper will send them", more, exc_info=True)
    job = jobs.claim_job(job_id, worker)
    if job is None:
        return "skipped: not queued"
    try:
        return _judge(self, job, worker)
    except Retry:
        raise
    except SoftTimeLimitExceeded:
        jobs.fail_job(job_id, _too_long())
        return "failed"
    except Exception as exc:  # whatever goes wrong, the job ends FAILED with a reason, never stuck RUNNING
        logger.exception("inference failed for job %s", job_id)
        jobs.fail_job(job_id, f"Inference failed: {type(exc).__name__}: {exc}")
        return "failed"


def _too_long() -> str:
    return f"Processing took longer than {settings.INFERENCE_TASK_TIME_LIMIT - 5} s; it was stopped."


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
        raise task.retry(args=[job.pk], exc=exc, countdown=min(60, 2**task.request.retries)) from exc
    try:
        prediction = get_predictor().predict(data, settings.MAX_IMAGE_PIXELS)
    except ImageRejected as exc:
        jobs.reject_job(job.pk, str(exc))
        return "rejected"
    if jobs.record_result(job, prediction) is None:
        return "skipped: already final"
    pacs.schedule(job.study_id)  # a DICOM study from a peer that takes results: send them back
    return "done"


def _run_batch(job_ids: list[int], worker: str) -> str:
    job_id = job_ids[0]
    batch = batching.claim_batch(job_ids, worker, settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS)
    if not batch:
        return "skipped: not queued"
    try:
        fate = _judge_batch(batch, worker)
    except SoftTimeLimitExceeded:
        reason = _too_long()
    except Exception as exc:  # whatever goes wrong, every job of the batch ends final with a reason
        logger.exception("inference failed for the batch of jobs %s", [job.pk for job in batch])
        reason = f"Inference failed: {type(exc).__name__}: {exc}"
    else:  # the fate of the message's first job (as the per-job path answers), else what the batch did
        return fate.get(job_id) or f"batch of {len(batch)}: {sum(v == 'done' for v in fate.values())} done"
    for job in batch:  # only those not final yet move: a job already recorded keeps its result
        jobs.fail_job(job.pk, reason)
    return "failed"


def _judge_batch(batch: list[Any], worker: str) -> dict[int, str]:
    """Read every original, judge the readable ones in one pass, record the results together. Each job ends
    alone: a missing original FAILED, a bad image REJECTED, a storage hiccup back in the queue for a retry."""
    fate: dict[int, str] = {}
    readable, datas = [], []
    for job in batch:
        try:
            datas.append(jobs.read_original(job))
            readable.append(job)
        except jobs.OriginalMissing as exc:
            jobs.fail_job(job.pk, str(exc))
            fate[job.pk] = "failed"
        except (OSError, DatabaseError) as exc:  # transient: back to the queue, re-sent after a backoff
            if job.attempts >= settings.MAX_ATTEMPTS:
                jobs.fail_job(job.pk, f"The original image could not be read: {type(exc).__name__}: {exc}")
                fate[job.pk] = "failed"
            elif jobs.release_job(job.pk, worker):
                _send_later(job.pk, min(60, 2**job.attempts))
                fate[job.pk] = "retry"
    done = []
    for job, outcome in zip(readable, _predict_all(datas), strict=True):
        if isinstance(outcome, ImageRejected):
            jobs.reject_job(job.pk, str(outcome))
            fate[job.pk] = "rejected"
        elif isinstance(outcome, Exception):
            jobs.fail_job(job.pk, f"Inference failed: {type(outcome).__name__}: {outcome}")
            fate[job.pk] = "failed"
        else:
            done.append((job, outcome))
    for (job, _), result in zip(done, jobs.record_results(done), strict=True):
        fate[job.pk] = "done" if result is not None else "skipped: already final"
    # DICOM studies from a peer that takes results: send them back
    pacs.schedule_many([job.study_id for job, _ in done if fate[job.pk] == "done"])
    return fate


def _predict_all(datas: list[bytes]) -> list[Any]:
    """One compiled pass for the batch; should that pass itself fail, each image alone, so that only the image
    that breaks it fails (an Exception in its place)."""
    if not datas:
        return []
    predictor = get_predictor()
    try:
        return list(predictor.predict_batch(datas, settings.MAX_IMAGE_PIXELS))
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        if len(datas) == 1:
            raise
        logger.exception("a batch of %d failed; judging its images one by one", len(datas))
    outcomes: list[Any] = []
    for data in datas:
        try:
            outcomes.append(predictor.predict_batch([data], settings.MAX_IMAGE_PIXELS)[0])
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _send_later(job_id: int, countdown: int) -> None:
    try:
        jobs.send(job_id, countdown=countdown)
    except Exception:  # the job is QUEUED: the sweeper sends it
        logger.warning("job %s not re-sent; the sweeper will send it", job_id, exc_info=True)


@shared_task(name=SWEEP_STALE_JOBS)
def sweep_stale_jobs() -> int:
    requeued = jobs.requeue_stale_jobs(requeue_queued=inference_backlog() == 0, live_nodes=live_workers())
    pacs.redrive()
    return len(requeued)


@shared_task(name=SEND_RESULTS)
def send_results(study_id: str) -> str:
    return str(pacs.send(study_id).status)


@shared_task(name=SEND_REVIEW)
def send_review(send_id: int) -> str:
    return str(pacs.send_review(int(send_id)).status)


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
