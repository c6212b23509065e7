"""The inference job's state machine: enqueue, claim, release, reject, fail, record, and the sweeper's requeue.

Every transition is one conditional UPDATE, so two workers (or a worker and the sweeper) can never both own
a job, and running any step twice is harmless. The machine is total (tests/diagnosis/test_job_states.py):

    QUEUED  -> RUNNING (claim)            -> DONE | FAILED | REJECTED (a late finisher, a give-up)
    RUNNING -> QUEUED (release, sweeper)  -> RUNNING (re-claim: the holder is gone) -> DONE | FAILED | REJECTED
    DONE, FAILED, REJECTED: final, nothing moves them.

A job is given up (FAILED) once it has been claimed MAX_ATTEMPTS times, whether it was re-sent from QUEUED or
from RUNNING, so nothing is re-sent forever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from diagnosis.models import InferenceJob, JobStatus, Result
from diagnosis.task_names import RUN_INFERENCE
from worker.ml import working
from worker.ml.prediction import Prediction
from worker.ml.working import WorkingCopy

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
NOT_FINAL = Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
# A freshly claimed job is never judged "held by a gone worker" by the sweeper's ping within this many seconds.
PING_GRACE_SECONDS = 5


def gave_up_reason() -> str:
    return f"Processing stopped {settings.MAX_ATTEMPTS} times without finishing; the image was not judged."


# After a failed publish, sends are skipped for this long (the jobs stay QUEUED for the sweeper), so that one
# request of many files, or many requests, do not each wait for the broker's timeout while it is stalled.
BROKER_PAUSE_SECONDS = 5.0
_broker_paused_until = 0.0
# Celery copies a task's time limits into every message sent by name, and a worker obeys the message's first:
# the sender's INFERENCE_BATCH_SIZE would then set the limit of a worker that runs bigger batches (a GPU worker's
# 128 behind a web server's 32). None leaves each worker its own limit (settings.INFERENCE_TASK_TIME_LIMIT).
_WORKER_LIMITS: dict[str, Any] = {"time_limit": None, "soft_time_limit": None}


def send(*job_ids: int, per_message: int = 1, countdown: int | None = None) -> None:
    """Publish the job ids, `per_message` to a message, through one producer (`countdown`: seconds before a worker
    may take them). Every broker operation is time-limited (settings), so this returns or raises within about
    BROKER_SOCKET_TIMEOUT even when Redis is stalled; a job not sent stays QUEUED and the sweeper sends it."""
    global _broker_paused_until
    if time.monotonic() < _broker_paused_until:
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
        _broker_paused_until = time.monotonic() + BROKER_PAUSE_SECONDS
        _due_for_the_sweeper(job_ids)
        raise


def _due_for_the_sweeper(job_ids: Sequence[int]) -> None:
    """Jobs whose message was not sent are dated as if queued QUEUED_STALE_SECONDS ago, so that the sweeper's next
    round sends them (within SWEEP_INTERVAL) instead of after QUEUED_STALE_SECONDS: a red-team pass stalled Redis
    for 16 s, and every study submitted meanwhile waited 2.5 minutes. Best effort: the database may be down too."""
    due = timezone.now() - timedelta(seconds=settings.QUEUED_STALE_SECONDS + 1)
    try:
        InferenceJob.objects.filter(pk__in=job_ids, status=JobStatus.QUEUED).update(enqueued_at=due)
    except DatabaseError:
        logger.warning("jobs %s could not be marked for the sweeper: it sends them when they are stale", job_ids)


def enqueue(job_id: int) -> None:
    """Send the job id to the inference queue once the surrounding transaction has committed.

    robust: if the broker is down (or stalled: every broker operation is time-limited in settings) the study
    is already stored, and the sweeper enqueues it later.
    """
    enqueue_many([job_id])


def enqueue_many(job_ids: list[int]) -> None:
    """enqueue() for many jobs: once the transaction has committed, their ids go out half a batch
    (INFERENCE_BATCH_SIZE / 2) to a message. diagnosis.batching: a message's task claims the jobs it names first,
    so the other half of its batch is left to the fair order (interactive studies, other clinics); one message a
    job made most messages no-ops, each about 3 ms of worker CPU."""
    if job_ids:
        per_message = max(1, settings.INFERENCE_BATCH_SIZE // 2)
        transaction.on_commit(lambda: send(*job_ids, per_message=per_message), robust=True)


def worker_id(nodename: str = "") -> str:
    """Who holds a job: "<celery node>|<machine>|<pid>", so a holder that is gone can be told (holder_gone)."""
    return f"{nodename}|{socket.gethostname()}|{os.getpid()}"


def holder_gone(holder: str, live_nodes: set[str] | None = None) -> bool:
    """True when the process named by `holder` (a worker_id) surely no longer runs: on this machine its pid is
    gone, or (live_nodes: the Celery nodes that answered a ping) its node did not answer."""
    try:
        node, machine, pid = holder.rsplit("|", 2)
    except ValueError:
        return False
    if live_nodes is not None and node and node not in live_nodes:
        return True
    if machine != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def may_claim(status: str, holder: str) -> bool:
    """Whether a job in `status`, held by `holder`, may be claimed (or, out of attempts, given up): queued, or
    running under a holder that is gone. Not final, and never under a live worker's feet."""
    return status == JobStatus.QUEUED or (status == JobStatus.RUNNING and holder_gone(holder))


def claim_job(job_id: int, worker: str = "") -> InferenceJob | None:
    """Atomically move a QUEUED job to RUNNING (or take over a RUNNING one whose holder is gone, such as a
    worker child killed mid-job whose message was redelivered). None when this worker must not run it:
    done, held by a live worker, or given up after MAX_ATTEMPTS claims (then it is FAILED)."""
    worker = worker or worker_id()
    # Read first: most messages of a batched bulk submission name a job an earlier batch took, and a read takes
    # no write lock (the whole database, on SQLite).
    job = InferenceJob.objects.filter(pk=job_id).only("status", "worker", "attempts").first()
    if job is None or not may_claim(job.status, job.worker):
        return None
    if job.attempts >= settings.MAX_ATTEMPTS:
        fail_job(job_id, gave_up_reason())
        return None
    running = {"status": JobStatus.RUNNING, "started_at": timezone.now(), "attempts": F("attempts") + 1}
    if job.status == JobStatus.QUEUED:
        taken = InferenceJob.objects.filter(pk=job_id, status=JobStatus.QUEUED, attempts__lt=settings.MAX_ATTEMPTS)
    else:
        taken = InferenceJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker=job.worker)
        logger.warning("job %s: re-claiming it from %s, which is gone", job_id, job.worker)
        _requeue_orphans(job.worker, job_id)
    if not taken.update(**running, worker=worker):  # another worker took it in between
        return None
    return InferenceJob.objects.select_related("study").get(pk=job_id)


def _requeue_orphans(holder: str, but: int) -> None:
    """The other jobs a gone holder held (a batch killed mid-way, whose other messages were already spent): back
    to the queue and sent now, not when the sweeper's deadline comes."""
    held = InferenceJob.objects.filter(status=JobStatus.RUNNING, worker=holder).exclude(pk=but)
    orphans = list(held.values_list("pk", flat=True))
    if orphans and held.filter(pk__in=orphans).update(status=JobStatus.QUEUED, enqueued_at=timezone.now()):
        logger.warning("jobs %s of %s, which is gone, are queued again", orphans, holder)
        enqueue_many(orphans)


class OriginalMissing(Exception):
    """The study's original image cannot be read (deleted, or never stored): final, never retried."""


def read_original(job: InferenceJob) -> bytes:
    try:
        with job.study.image.open("rb") as fh:
            return bytes(fh.read())
    except FileNotFoundError as exc:
        raise OriginalMissing("The original image is missing from storage; it cannot be judged.") from exc


def read_working_copy(job: InferenceJob) -> WorkingCopy | None:
    """The study's working copy (worker.ml.working), or None: a study stored before there were copies, a copy made
    by another version of the preprocessing, or one that cannot be read. The original is read then; it is the
    record, the copy only spares decoding it again. (No database: the job's study is loaded with it.)"""
    study = job.study
    if not str(study.model_copy.name or "").endswith(working.FILE_NAME) or study.chroma is None:
        return None
    try:
        with study.model_copy.open("rb") as model, study.preview.open("rb") as preview:
            return WorkingCopy(model_pgm=bytes(model.read()), display_jpeg=bytes(preview.read()), chroma=study.chroma)
    except Exception:  # whatever storage raises: the original is read instead, and its errors handled as ever
        logger.warning("study %s: its working copy cannot be read; its original is decoded", study.pk, exc_info=True)
        return None


def give_back(job_id: int, worker: str) -> bool:
    """Hand a RUNNING job this worker claimed but never started back to the queue, the claim not counted as an
    attempt (a task that had to stop before judging a batch it claimed ahead)."""
    return bool(
        InferenceJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker=worker).update(
            status=JobStatus.QUEUED, enqueued_at=timezone.now(), attempts=F("attempts") - 1
        )
    )


def release_job(job_id: int, worker: str = "") -> bool:
    """Hand a RUNNING job back to the queue after a transient error (the task retries it)."""
    held = Q(worker=worker) if worker else Q()
    return bool(
        InferenceJob.objects.filter(held, pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.QUEUED, enqueued_at=timezone.now()
        )
    )


def _finish(job_id: int, status: JobStatus, reason: str = "") -> bool:
    """Any job that is not final (queued, running, whoever holds it) ends here; a final one never moves again."""
    now = timezone.now()
    job = InferenceJob.objects.filter(pk=job_id).only("started_at").first()
    started = job.started_at if job and job.started_at else now
    return bool(
        InferenceJob.objects.filter(NOT_FINAL, pk=job_id).update(
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


def finish_done(job_id: int) -> bool:
    """DONE, from any state that is not final (record_result, and batching.record_results in bulk)."""
    return _finish(job_id, JobStatus.DONE)


def finish_done_many(batch: Sequence[InferenceJob]) -> set[int]:
    """finish_done for a batch of claimed jobs: one read, one UPDATE per claim time; the ids that became DONE.

    Call it inside a transaction: the rows read as not final stay locked (PostgreSQL's select_for_update, in pk
    order) or the whole database does (SQLite's IMMEDIATE transactions) until the UPDATEs are written; the UPDATEs
    also skip any row that is final, whatever happens."""
    ids = [job.pk for job in batch]
    rows = InferenceJob.objects.select_for_update().filter(NOT_FINAL, pk__in=ids).order_by("pk")
    live = set(rows.values_list("pk", flat=True))
    now = timezone.now()
    by_start: dict[datetime, list[int]] = defaultdict(list)
    for job in batch:
        if job.pk in live:
            by_start[job.started_at or now].append(job.pk)
    for started, pks in by_start.items():
        InferenceJob.objects.filter(NOT_FINAL, pk__in=pks).update(
            status=JobStatus.DONE, reason="", finished_at=now, processing_ms=int((now - started).total_seconds() * 1000)
        )
    return live


def record_result(job: InferenceJob, prediction: Prediction) -> Result | None:
    """record_results for one job (the per-job path)."""
    return record_results([(job, prediction)])[0]


def record_results(outcomes: Sequence[tuple[InferenceJob, Prediction]]) -> list[Result | None]:
    """Store each job's result and mark it DONE: store_results, then record_stored. Should any files fail to be
    written, none is kept and the error is raised."""
    stored = store_results(outcomes)
    written = [r for r in stored if isinstance(r, Result)]
    failed = [r for r in stored if isinstance(r, Exception)]
    if failed:
        remove_files(written)
        raise failed[0]
    return record_stored(outcomes, written)


_storage_pool: ThreadPoolExecutor | None = None
_storage_lock = threading.Lock()


def storage_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
    """fn over items, in order, on STORAGE_THREADS threads (no database: storage calls only): each item's result,
    or the Exception it raised. Object storage answers each call in tens of milliseconds; a batch's files are
    read and written side by side instead of one after another."""

    def each(item: T) -> R | Exception:
        try:
            return fn(item)
        except Exception as exc:
            return exc

    if settings.STORAGE_THREADS <= 1 or len(items) <= 1:
        return [each(item) for item in items]
    global _storage_pool
    with _storage_lock:
        if _storage_pool is None:
            _storage_pool = ThreadPoolExecutor(settings.STORAGE_THREADS, thread_name_prefix="storage")
    return list(_storage_pool.map(each, items))


def store_results(outcomes: Sequence[tuple[InferenceJob, Prediction]]) -> list[Result | Exception]:
    """Each job's unsaved Result with its heatmap and overlay files written (storage_map), or the Exception that
    stopped its files being written (none of them is left); no database (a worker's drawing thread calls it)."""
    return storage_map(lambda outcome: unsaved_result(*outcome), outcomes)


def record_stored(
    outcomes: Sequence[tuple[InferenceJob, Prediction]], unsaved: Sequence[Result]
) -> list[Result | None]:
    """Save the stored results' rows and mark their jobs DONE, from QUEUED (the sweeper re-sent a slow job, and this
    first run finished) or RUNNING, all in one transaction. Running it twice keeps the first result; a job already
    FAILED or REJECTED keeps that outcome and gets no result (None).

    The files were written before (store_results), so that the database (SQLite: the whole file) is locked only
    for the few statements; the files of a result that is not kept are removed, whatever happens."""
    if not outcomes:
        return []
    done: set[int] = set()
    try:
        with transaction.atomic():
            existing = {r.study_id: r for r in Result.objects.filter(study_id__in=[j.study_id for j, _ in outcomes])}
            kept = finish_done_many([job for job, _ in outcomes if job.study_id not in existing])
            Result.objects.bulk_create([r for (job, _), r in zip(outcomes, unsaved, strict=True) if job.pk in kept])
        done = kept
    finally:
        remove_files([r for (job, _), r in zip(outcomes, unsaved, strict=True) if job.pk not in done])
    return [
        existing.get(job.study_id) or (result if job.pk in done else None)
        for (job, _), result in zip(outcomes, unsaved, strict=True)
    ]


def remove_files(results: Sequence[Result]) -> None:
    """The heatmap and overlay files of results whose rows are not saved; one that cannot be removed is logged and
    the others are still removed (whatever error led here is the one that matters)."""
    for result in results:
        for file in (result.heatmap, result.overlay):
            try:
                file.delete(save=False)
            except Exception:
                logger.warning("could not remove %s", file.name, exc_info=True)


def unsaved_result(job: InferenceJob, prediction: Prediction) -> Result:
    """The job's Result with its heatmap and overlay files already stored; the row is not saved yet."""
    result = Result(
        study_id=job.study_id,
        label=prediction.label,
        probability=prediction.probability,
        threshold=prediction.threshold,
        model_version=prediction.model_version,
        inference_ms=prediction.inference_ms,
    )
    # Names of their own: two runs of one job (a re-sent message) never write, nor later remove, the same file,
    # even on object storage, where "does it exist, then write" is not atomic.
    run = uuid.uuid4().hex[:12]
    result.heatmap.save(f"heatmap-{run}.png", ContentFile(prediction.heatmap_png), save=False)
    try:
        result.overlay.save(f"overlay-{run}.jpg", ContentFile(prediction.overlay_jpeg), save=False)
    except BaseException:  # the heatmap alone would be left behind
        result.heatmap.delete(save=False)
        raise
    return result


def requeue_stale_jobs(requeue_queued: bool = True, live_nodes: set[str] | None = None) -> list[int]:
    """The sweeper: re-enqueue jobs queued or running past their deadline, or running on a worker that is gone
    (live_nodes: the Celery nodes that answered a ping; None when unknown); give up after MAX_ATTEMPTS claims.

    Covers a lost broker message, a Redis restart and a worker killed mid-job. requeue_queued=False (the
    broker still holds a backlog) leaves long-queued jobs alone: they wait their turn, and re-sending them
    would only pile duplicates onto the queue; a lost one is re-sent once the backlog has drained.
    """
    now = timezone.now()
    gave_up = InferenceJob.objects.filter(NOT_FINAL, attempts__gte=settings.MAX_ATTEMPTS).exclude(
        status=JobStatus.RUNNING, started_at__gte=now - timedelta(seconds=settings.RUNNING_STALE_SECONDS)
    )
    failed = gave_up.update(status=JobStatus.FAILED, finished_at=now, reason=gave_up_reason())
    if failed:
        logger.warning("sweeper: gave up on %d jobs", failed)
    running = _stale_running(now, live_nodes)
    InferenceJob.objects.filter(pk__in=running, status=JobStatus.RUNNING).update(
        status=JobStatus.QUEUED, enqueued_at=now
    )
    queued_deadline = now - timedelta(seconds=settings.QUEUED_STALE_SECONDS)
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
        try:
            send(job_id)
        except Exception:  # the broker failed: this job, and the rest (skipped while it is paused), are due next round
            logger.warning("sweeper: job %s not sent; it is due in the next round", job_id, exc_info=True)
    if stale:
        logger.info("sweeper: re-enqueued %d jobs", len(stale))
    return stale


def running_past_grace() -> bool:
    """Whether some job has been RUNNING past the ping grace: only then must the sweeper ask which workers live
    (the ping waits a second, in the worker that runs the sweeper: in `make run`, the one that judges)."""
    grace = timezone.now() - timedelta(seconds=PING_GRACE_SECONDS)
    return InferenceJob.objects.filter(status=JobStatus.RUNNING, started_at__lt=grace).exists()


def _stale_running(now: datetime, live_nodes: set[str] | None) -> list[int]:
    """RUNNING jobs past RUNNING_STALE_SECONDS, or (after a short grace) held by a worker that is gone."""
    deadline = now - timedelta(seconds=settings.RUNNING_STALE_SECONDS)
    grace = now - timedelta(seconds=PING_GRACE_SECONDS)
    stale = []
    for pk, started, holder in InferenceJob.objects.filter(status=JobStatus.RUNNING).values_list(
        "pk", "started_at", "worker"
    ):
        if started is None or started < deadline or (started < grace and holder_gone(holder, live_nodes)):
            stale.append(pk)
    return stale
