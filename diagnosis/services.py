"""All writes: creating studies, and every job state transition the worker and the sweeper make.

Job transitions are single conditional UPDATEs, so two workers (or a worker and the sweeper) can never
both own a job, and running any step twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, Protocol

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from diagnosis import archives, audit, selectors
from diagnosis.access import NO_ORIGIN, AnyUser, Origin, require_membership
from diagnosis.models import (
    AuditAction,
    Batch,
    IdempotentResponse,
    InferenceJob,
    JobStatus,
    Label,
    Result,
    Review,
    Role,
    Study,
)
from diagnosis.validation import UploadError, ValidatedUpload, validate_upload

logger = logging.getLogger(__name__)
INFERENCE_TASK = "worker.tasks.run_inference"


class PredictionLike(Protocol):
    label: str
    probability: float
    threshold: float
    model_version: str
    heatmap_png: bytes
    overlay_png: bytes
    inference_ms: int


@dataclass(frozen=True)
class StudyDetails:
    """Optional, pseudonymous details given with an upload."""

    patient_ref: str = ""
    age_years: int | None = None
    sex: str = ""
    projection: str = ""
    clinical_note: str = ""


NO_DETAILS = StudyDetails()
DETAIL_FIELDS = tuple(f.name for f in fields(StudyDetails))


def details_from(cleaned: Mapping[str, Any]) -> StudyDetails:
    """StudyDetails from a validated form or serializer (text stripped of surrounding blanks)."""
    return StudyDetails(
        patient_ref=cleaned["patient_ref"].strip(),
        age_years=cleaned["age_years"],
        sex=cleaned["sex"],
        projection=cleaned["projection"],
        clinical_note=cleaned["clinical_note"].strip(),
    )


@dataclass
class Submission:
    studies: list[Study] = field(default_factory=list)
    errors: list[UploadError] = field(default_factory=list)


def enqueue(job_id: int) -> None:
    """Send the job id to the inference queue once the surrounding transaction has committed.

    robust: if the broker is down the study is already stored, and the sweeper enqueues it later.
    """
    transaction.on_commit(lambda: current_app.send_task(INFERENCE_TASK, args=[job_id]), robust=True)


def create_study(
    owner: User,
    upload: ValidatedUpload,
    batch: Batch | None = None,
    details: StudyDetails = NO_DETAILS,
    origin: Origin = NO_ORIGIN,
) -> Study:
    """Store the study in the owner's clinic, audit the upload and queue its job, all or nothing."""
    clinic = require_membership(owner).clinic
    with transaction.atomic():
        study = Study(
            clinic=clinic,
            owner=owner,
            batch=batch,
            patient_ref=details.patient_ref,
            age_years=details.age_years,
            sex=details.sex,
            projection=details.projection,
            clinical_note=details.clinical_note,
            original_name=upload.name,
            content_type=upload.content_type,
            size_bytes=len(upload.data),
            sha256=upload.sha256,
            width=upload.width,
            height=upload.height,
        )
        study.image.save(f"original{upload.extension}", ContentFile(upload.data), save=False)
        study.preview.save("preview.jpg", ContentFile(upload.preview_jpeg), save=False)
        study.thumbnail.save("thumbnail.jpg", ContentFile(upload.thumbnail_jpeg), save=False)
        study.save()
        job = InferenceJob.objects.create(study=study, enqueued_at=timezone.now())
        audit_detail = {"file_name": upload.name, "batch": str(batch.pk) if batch else None}
        audit.record(owner, AuditAction.UPLOAD, study, audit_detail, origin, clinic=clinic)
        enqueue(job.pk)
    return study


def submit_files(
    owner: User,
    files: Iterable[UploadedFile],
    batch: Batch | None = None,
    details: StudyDetails = NO_DETAILS,
    origin: Origin = NO_ORIGIN,
) -> Submission:
    """Validate and store each file on its own: one bad file is reported and does not stop the others."""
    return _submit(owner, ((f.name or "unnamed", f.size or 0, f) for f in files), batch, details, origin)


def _submit(
    owner: User,
    items: Iterable[archives.Entry | UploadError],
    batch: Batch | None,
    details: StudyDetails,
    origin: Origin,
) -> Submission:
    """One file in memory at a time, however many there are."""
    result = Submission()
    for item in items:
        try:
            if isinstance(item, UploadError):
                raise item
            name, size, stream = item
            upload = validate_upload(name, size, stream)
        except UploadError as exc:
            result.errors.append(exc)
            continue
        result.studies.append(create_study(owner, upload, batch, details, origin))
    return result


def submit_batch(
    owner: User,
    files: list[UploadedFile],
    archive: UploadedFile | None,
    details: StudyDetails = NO_DETAILS,
    origin: Origin = NO_ORIGIN,
) -> tuple[Batch, Submission]:
    """A bulk submission: many files, or the entries of one zip archive, as one batch."""
    require_membership(owner)
    batch = Batch.objects.create(owner=owner)
    if archive is None:
        return batch, submit_files(owner, files, batch, details, origin)
    limit = settings.MAX_UPLOAD_BYTES
    try:
        entries = archives.entries(archive, limit, settings.MAX_ARCHIVE_BYTES)
        return batch, _submit(owner, entries, batch, details, origin)
    except UploadError as exc:
        return batch, Submission(errors=[UploadError(archive.name or "archive", exc.message)])


def view_study(user: AnyUser, study_id: object, origin: Origin, via: str) -> Study:
    """A study of the user's clinic (404 otherwise), its viewing recorded in the audit trail."""
    study = selectors.get_study(user, str(study_id))
    audit.record(user, AuditAction.VIEW_STUDY, study, {"via": via}, origin)
    return study


def view_file(user: AnyUser, study_id: object, kind: str, origin: Origin) -> Study:
    study = selectors.get_study(user, str(study_id))
    audit.record(user, AuditAction.VIEW_FILE, study, {"file": kind}, origin)
    return study


class ReviewError(Exception):
    """The study cannot be reviewed (the model has not judged it)."""


def review_study(reviewer: User, study: Study, agrees: bool, note: str, origin: Origin = NO_ORIGIN) -> Review:
    """Record (or revise) the clinic reviewer's reading. With two labels, disagreeing means the other one."""
    require_membership(reviewer, Role.REVIEWER)
    result = getattr(study, "result", None)
    if result is None:
        raise ReviewError("Only a study the model has judged can be reviewed.")
    other = Label.NORMAL if result.label == Label.PNEUMONIA else Label.PNEUMONIA
    final = result.label if agrees else other
    with transaction.atomic():
        # Locked, so that two reviewers saving at once each audit the review they actually replaced.
        previous = (
            Review.objects.select_for_update().filter(study=study).values("final_label", "reviewer__username").first()
        )
        review, _ = Review.objects.update_or_create(
            study=study, defaults={"reviewer": reviewer, "agrees": agrees, "final_label": final, "note": note}
        )
        detail = {"model_label": result.label, "final_label": final, "agrees": agrees, "previous": previous}
        audit.record(reviewer, AuditAction.REVIEW, study, detail, origin)
    study.review = review
    return review


def replay_or_store(
    owner: User, key: str, produce: Callable[[], tuple[int, dict[str, Any]]]
) -> tuple[int, dict[str, Any]]:
    """Idempotency-Key: the first POST with a key reserves it, runs, and stores its answer; retries get that
    answer, and a retry that arrives while the first is still running gets 409 instead of a duplicate."""
    try:
        with transaction.atomic():
            record = IdempotentResponse.objects.create(owner=owner, key=key, status_code=0, body={})
    except IntegrityError:
        record = IdempotentResponse.objects.get(owner=owner, key=key)
        if record.status_code == 0:
            return 409, {"detail": "A request with this Idempotency-Key is still being processed; retry shortly."}
        return record.status_code, record.body
    try:
        status, body = produce()
    except BaseException:
        record.delete()
        raise
    record.status_code, record.body = status, body
    record.save(update_fields=["status_code", "body"])
    return status, body


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


def record_result(job: InferenceJob, prediction: PredictionLike) -> Result:
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
        current_app.send_task(INFERENCE_TASK, args=[job_id])
    if stale:
        logger.info("sweeper: re-enqueued %d jobs", len(stale))
    return stale
