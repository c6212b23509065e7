"""The inference job's state machine: claim, release, give back, reject, fail, record, and the sweeper's requeue.

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
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from diagnosis import dispatch
from diagnosis.liveness import holder_gone, worker_id
from diagnosis.models import InferenceJob, JobStatus, Result
from diagnosis.result_files import remove_files, store_results
from worker.ml.prediction import Prediction

logger = logging.getLogger(__name__)
NOT_FINAL = Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
# A freshly claimed job is never judged "held by a gone worker" by the sweeper's ping within this many seconds.
PING_GRACE_SECONDS = 5


def gave_up_reason() -> str:
    return f"Processing stopped {settings.MAX_ATTEMPTS} times without finishing; the image was not judged."


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
    if job.status == JobStatus.QUEUED:
        taken = claim_queued([job_id], worker)
    else:
        logger.warning("job %s: re-claiming it from %s, which is gone", job_id, job.worker)
        _requeue_orphans(job.worker, job_id)
        held = InferenceJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker=job.worker)
        taken = [job_id] if held.update(**_running(timezone.now()), worker=worker) else []
    if not taken:  # another worker took it in between
        return None
    return InferenceJob.objects.select_related("study").get(pk=job_id)


def _running(now: datetime) -> dict[str, Any]:
    """The columns of a claim: RUNNING from `now`, one more attempt."""
    return {"status": JobStatus.RUNNING, "started_at": now, "attempts": F("attempts") + 1}


def claim_queued(ids: Sequence[int], worker: str) -> list[int]:
    """Move those of `ids` still QUEUED (and with attempts left) to RUNNING, held by `worker`, in one conditional
    UPDATE (atomic on PostgreSQL and SQLite alike: a row another worker took in between no longer matches). Returns
    the ids taken, in the order given, read back by holder and by this claim's start time, so a job the same worker
    took earlier is not counted."""
    if not ids:
        return []
    now = timezone.now()
    # A job handed back after a transient error (release_job) waits out its backoff even when a message names it (an
    # earlier message, or another task's): else a brief storage outage spent every attempt in a moment.
    due = Q(attempts=0) | Q(enqueued_at__lte=now)
    InferenceJob.objects.filter(due, pk__in=ids, status=JobStatus.QUEUED, attempts__lt=settings.MAX_ATTEMPTS).update(
        **_running(now), worker=worker
    )
    mine = InferenceJob.objects.filter(pk__in=ids, status=JobStatus.RUNNING, worker=worker, started_at=now)
    taken = set(mine.values_list("pk", flat=True))
    return [pk for pk in ids if pk in taken]


def _requeue_orphans(holder: str, but: int) -> None:
    """The other jobs a gone holder held (a batch killed mid-way, whose other messages were already spent): back
    to the queue and sent now, not when the sweeper's deadline comes."""
    held = InferenceJob.objects.filter(status=JobStatus.RUNNING, worker=holder).exclude(pk=but)
    orphans = list(held.values_list("pk", flat=True))
    if orphans and held.filter(pk__in=orphans).update(status=JobStatus.QUEUED, enqueued_at=timezone.now()):
        logger.warning("jobs %s of %s, which is gone, are queued again", orphans, holder)
        dispatch.enqueue_many(orphans)


def give_back(job_id: int, worker: str) -> bool:
    """Hand a RUNNING job this worker claimed but never started back to the queue, the claim not counted as an
    attempt (a task that had to stop before judging a batch it claimed ahead)."""
    return bool(
        InferenceJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker=worker).update(
            status=JobStatus.QUEUED, enqueued_at=timezone.now(), attempts=F("attempts") - 1
        )
    )


def retry_delay(attempts: int) -> int:
    """Seconds before a job that met a transient error after `attempts` claims is tried again."""
    return min(60, 2**attempts)


def release_job(job_id: int, worker: str = "", *, after: int = 0) -> bool:
    """Hand a RUNNING job back to the queue after a transient error (the task retries it), claimable in the fair
    order only `after` seconds from now (enqueued_at is then in the future): else the same task's next batch, or
    another worker's, took it again at once, and a brief storage outage spent every attempt in a moment."""
    held = Q(worker=worker) if worker else Q()
    return bool(
        InferenceJob.objects.filter(held, pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.QUEUED, enqueued_at=timezone.now() + timedelta(seconds=after)
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
            dispatch.send(job_id)
        except Exception:  # the broker failed: this job, and the rest (skipped while it is paused), are due next round
            logger.warning("sweeper: job %s not sent; it is due in the next round", job_id, exc_info=True)
    if stale:
        logger.info("sweeper: re-enqueued %d jobs", len(stale))
    return stale


def send_all_queued() -> list[int]:
    """Send every QUEUED job that is due (with claims left) again now, half a batch to a message, for a broker that
    lost every message: `make run`'s embedded Redis starts empty, and the studies a stop handed back would otherwise
    wait QUEUED_STALE_SECONDS for the sweeper. A job that also has a message is not judged twice: a task claims only
    jobs still QUEUED. The ids sent."""
    ids = list(
        InferenceJob.objects.filter(
            status=JobStatus.QUEUED, attempts__lt=settings.MAX_ATTEMPTS, enqueued_at__lte=timezone.now()
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    dispatch.enqueue_many(ids)
    return ids


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
