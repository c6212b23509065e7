"""The inference job's state machine: enqueue, claim, release, reject, fail, record, and the sweeper's requeue.

Every transition is one conditional UPDATE, so two workers (or a worker and the sweeper) can never both own
a job, and running any step twice is harmless.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from diagnosis.models import InferenceJob, JobStatus, Result
from diagnosis.task_names import RUN_INFERENCE
from worker.ml.prediction import Prediction

logger = logging.getLogger(__name__)


def send(job_id: int) -> None:
    current_app.send_task(RUN_INFERENCE, args=[job_id])


def enqueue(job_id: int) -> None:
    """Send the job id to the inference queue once the surrounding transaction has committed.

    robust: if the broker is down the study is already stored, and the sweeper enqueues it later.
    """
    transaction.on_commit(lambda: send(job_id), robust=True)


def claim_job(job_id: int) -> InferenceJob | None:
    """Atomically move a QUEUED job to RUNNING. None when it is not queued (done, or owned by another worker)."""
    claimed = InferenceJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return InferenceJob.objects.select_related("study").get(pk=job_id)


def read_original(job: InferenceJob) -> bytes:
    with job.study.image.open("rb") as fh:
        return bytes(fh.read())


def release_job(job_id: int) -> None:
    """Hand a RUNNING job back to the queue after a transient error (the task retries it)."""
    InferenceJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.QUEUED, enqueued_at=timezone.now()
    )


def _finish(job_id: int, status: JobStatus, reason: str = "") -> bool:
    now = timezone.now()
    job = InferenceJob.objects.filter(pk=job_id).only("started_at").first()
    started = job.started_at if job and job.started_at else now
    return bool(
        InferenceJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=status,
            reason=reason[:2000],
            finished_at=now,
            processing_ms=int((now - started).total_seconds() * 1000),
        )
    )


def reject_job(job_id: int, reason: str) -> bool:
    """The input is not something the model may judge (corrupt, not a radiograph): final, never retried."""
    return _finish(job_id, JobStatus.REJECTED, reason)


def fail_job(job_id: int, reason: str) -> bool:
    return _finish(job_id, JobStatus.FAILED, reason)


def record_result(job: InferenceJob, prediction: Prediction) -> Result:
    """Store the result and mark the job DONE. Running it twice keeps the first result."""
    with transaction.atomic():
        result = Result.objects.filter(study_id=job.study_id).first()
        if result is None:
            result = Result(
                study_id=job.study_id,
                label=prediction.label,
                probability=prediction.probability,
                threshold=prediction.threshold,
                model_version=prediction.model_version,
                inference_ms=prediction.inference_ms,
            )
            result.heatmap.save("heatmap.png", ContentFile(prediction.heatmap_png), save=False)
            result.overlay.save("overlay.png", ContentFile(prediction.overlay_png), save=False)
            result.save()
        _finish(job.pk, JobStatus.DONE)
    return result


def requeue_stale_jobs(requeue_queued: bool = True) -> list[int]:
    """The sweeper: re-enqueue jobs queued or running past their deadline; give up after MAX_ATTEMPTS.

    Covers a lost broker message, a Redis restart and a worker killed mid-job. requeue_queued=False (the
    broker still holds a backlog) leaves long-queued jobs alone: they wait their turn, and re-sending them
    would only pile duplicates onto the queue; a lost one is re-sent once the backlog has drained.
    """
    now = timezone.now()
    queued_deadline = now - timedelta(seconds=settings.QUEUED_STALE_SECONDS)
    running_deadline = now - timedelta(seconds=settings.RUNNING_STALE_SECONDS)
    stale_running = Q(status=JobStatus.RUNNING, started_at__lt=running_deadline)
    gave_up = InferenceJob.objects.filter(stale_running, attempts__gte=settings.MAX_ATTEMPTS).update(
        status=JobStatus.FAILED,
        finished_at=now,
        reason=f"Processing stopped {settings.MAX_ATTEMPTS} times without finishing; the image was not judged.",
    )
    if gave_up:
        logger.warning("sweeper: gave up on %d jobs", gave_up)
    running = list(InferenceJob.objects.filter(stale_running).values_list("pk", flat=True))
    InferenceJob.objects.filter(stale_running, pk__in=running).update(status=JobStatus.QUEUED, enqueued_at=now)
    queued = (
        list(
            InferenceJob.objects.filter(status=JobStatus.QUEUED, enqueued_at__lt=queued_deadline).values_list(
                "pk", flat=True
            )
        )
        if requeue_queued
        else []
    )
    InferenceJob.objects.filter(pk__in=queued, status=JobStatus.QUEUED).update(enqueued_at=now)
    stale = running + queued
    for job_id in stale:
        send(job_id)
    if stale:
        logger.info("sweeper: re-enqueued %d jobs", len(stale))
    return stale
