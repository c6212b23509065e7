"""Celery tasks (found by autodiscover_tasks): thin. Claim the job, call the ML package, record the outcome
through diagnosis.jobs. acks_late and reject-on-worker-lost are set for every task in settings.

TensorFlow is imported only when a worker child first needs the model (never in the web process,
never in the worker's parent before fork); the model is loaded once per child.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from amqp.exceptions import ChannelError
from celery import current_app, shared_task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from celery.signals import worker_process_init
from django.conf import settings
from django.db import DatabaseError

from diagnosis import batching, housekeeping, jobs, pacs
from diagnosis.models import JobPriority
from diagnosis.task_names import (
    INFERENCE_QUEUE,
    PRUNE_ORPHAN_FILES,
    RUN_INFERENCE,
    SEND_RESULTS,
    SEND_REVIEW,
    SWEEP_STALE_JOBS,
)
from worker.ml.prediction import Judged, Prediction, Prepared
from worker.ml.preprocessing import ImageRejected
from worker.ml.working import WorkingCopy

logger = logging.getLogger(__name__)
T = TypeVar("T")
A = TypeVar("A")
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
    except SoftTimeLimitExceeded as exc:
        jobs.fail_job(job_id, _reason(exc))
        return "failed"
    except Exception as exc:  # whatever goes wrong, the job ends FAILED with a reason, never stuck RUNNING
        logger.exception("inference failed for job %s", job_id)
        jobs.fail_job(job_id, _reason(exc))
        return "failed"


def _reason(exc: BaseException) -> str:
    """What a job failed by `exc` is told: the soft time limit, or the error."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"Processing took longer than {settings.INFERENCE_TASK_TIME_LIMIT - 5} s; it was stopped."
    return f"Inference failed: {type(exc).__name__}: {exc}"


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
    """Claim a batch (the jobs named first, then the fair order) and judge it; while jobs are queued and
    INFERENCE_DRAIN_SECONDS allow, go on with the next batches. A helper thread reads and decodes the next batch
    and draws and stores the one before while the model judges this one, and this thread keeps the database
    (issue 12: on 2 cores the model and the rest then share the cores, instead of one waiting for the other).
    Every job ends alone: see _Run."""
    size = settings.INFERENCE_BATCH_SIZE
    batch = batching.claim_batch(job_ids, worker, size, settings.INFERENCE_BATCH_WAIT_MS)
    if not batch:
        return "skipped: not queued"
    run = _Run(worker)
    with ThreadPoolExecutor(1, thread_name_prefix="inference-helper") as helper:
        reading: _Stage | None = _Stage(batch, helper.submit(_read_and_prepare, batch))
        next_reading: _Stage | None = None
        drawing: _Stage | None = None
        try:
            while reading is not None or drawing is not None:
                ready = run.guarded(reading.jobs, run.take, reading) if reading is not None else None
                waited_for = reading is not None and _waited_for(reading.jobs)
                if reading is not None and not waited_for:  # the next batch is read while this one is judged
                    next_reading = run.read_next(helper, size)
                judged = run.guarded([job for job, _ in ready], run.judge, ready) if ready else None
                if drawing is not None:
                    run.guarded(drawing.jobs, run.record, drawing)
                drawing = (
                    _Stage([job for job, _ in judged], helper.submit(_draw, judged), draws=True) if judged else None
                )
                if waited_for:  # drawn before the next batch is read, and recorded now, not after the next batch
                    next_reading = run.read_next(helper, size)
                    if drawing is not None:
                        run.guarded(drawing.jobs, run.record, drawing)
                        drawing = None
                if run.stopped and next_reading is not None:
                    run.give_back(next_reading)
                    next_reading = None
                reading, next_reading = next_reading, None
        except BaseException as exc:  # outside the guarded steps (the soft time limit can strike anywhere)
            run.abandon([reading, next_reading, drawing], exc)
            raise
    first = run.fate.get(job_ids[0])  # the fate of the message's first job (as the per-job path answers)
    done = sum(v == "done" for v in run.fate.values())
    return first or f"{run.batches} batch(es) of up to {size}: {done} of {len(run.fate)} done"


def _waited_for(batch: list[Any]) -> bool:
    """Whether someone waits at the screen for a study of the batch (an interactive job)."""
    return any(job.priority == JobPriority.INTERACTIVE for job in batch)


Judging = list[tuple[Any, Any]]  # (job, what became of its image so far) for each job of a batch


@dataclass
class _Stage:
    """A batch's step running on the helper thread: its jobs and the step's outcome to come. settled: recorded,
    or given up, by this thread; files a drawing stored are removed unless it was recorded (_discard_files)."""

    jobs: list[Any]
    future: Future[Any]
    draws: bool = False
    settled: bool = False


@dataclass
class _Unread:
    """An original that could not be read (on the helper thread): this thread decides what becomes of its job."""

    error: Exception


class _Run:
    """One task's batches. Each job ends alone: a missing original FAILED, a bad image REJECTED, a storage hiccup
    back in the queue for a retry, a batch whose handling fails (or runs past the soft time limit) FAILED with the
    reason, each job at most once (a final job never moves)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.fate: dict[int, str] = {}
        self.started = time.monotonic()
        self.batches = 0
        self.stopped = False

    def goes_on(self) -> bool:
        """Claim another batch: not stopped, and well inside the drain time and the task's soft time limit (three
        batches' time to spare, at the pace so far)."""
        elapsed = time.monotonic() - self.started
        per_batch = elapsed / max(1, self.batches)
        soft_limit = settings.INFERENCE_TASK_TIME_LIMIT - 5
        inside = elapsed < settings.INFERENCE_DRAIN_SECONDS and elapsed + 3 * per_batch < soft_limit
        return inside and not self.stopped

    def read_next(self, helper: ThreadPoolExecutor, size: int) -> _Stage | None:
        """The next batch claimed, if the task goes on and jobs are queued, and its reading queued on the helper."""
        more = self.claim_next(size) if self.goes_on() else []
        return _Stage(more, helper.submit(_read_and_prepare, more)) if more else None

    def claim_next(self, size: int) -> list[Any]:
        """The next batch in the fair order; none, and no more, should claiming fail (the batches in hand go on)."""
        try:
            return batching.claim_next(self.worker, size)
        except SoftTimeLimitExceeded:
            self.stopped = True
        except Exception:
            logger.exception("could not claim a further batch; this task stops after the batches it holds")
            self.stopped = True
        return []

    def guarded(self, batch: list[Any], step: Callable[[A], T], arg: A) -> T | None:
        """step(arg), or, should it fail, every job of the batch not final yet FAILED with the reason (None)."""
        try:
            return step(arg)
        except SoftTimeLimitExceeded as exc:
            self.stopped = True
            self.fail_open(batch, _reason(exc))
        except Exception as exc:
            logger.exception("inference failed for the batch of jobs %s", [job.pk for job in batch])
            self.fail_open(batch, _reason(exc))
        return None

    def fail_open(self, batch: list[Any], reason: str, quiet: bool = False) -> None:
        """Every job of the batch that has no fate yet: FAILED with the reason (quiet: as far as the database lets
        it, for a loop already breaking off)."""
        for job in batch:
            if job.pk in self.fate:
                continue
            try:
                jobs.fail_job(job.pk, reason)
            except Exception:
                if not quiet:
                    raise
            self.fate[job.pk] = "failed"

    def give_back(self, reading: _Stage) -> None:
        """A batch claimed ahead, not judged, when the task must stop: back to the queue without the claim counting
        as an attempt, and sent again (should the database fail here, the sweeper re-queues them)."""
        reading.settled = True
        try:
            for job in reading.jobs:
                if jobs.give_back(job.pk, self.worker):
                    _send_later(job.pk, 0)
        except Exception:
            logger.exception("could not give jobs %s back; the sweeper will", [job.pk for job in reading.jobs])

    def abandon(self, stages: list[_Stage | None], exc: BaseException) -> None:
        """The loop broke off outside a guarded step: every job it holds that is not final ends FAILED with the
        reason (as far as the database lets it), and files drawn for them that were not recorded are removed."""
        for stage in stages:
            if stage is None or stage.settled:
                continue
            stage.settled = True
            if stage.draws:
                stage.future.add_done_callback(_discard_files)
            self.fail_open(stage.jobs, _reason(exc), quiet=True)

    def take(self, reading: _Stage) -> Judging:
        """The batch read and prepared: those whose original could not be read end here (a missing one FAILED, a
        storage hiccup back in the queue for a retry); the others go on to the model."""
        self.batches += 1
        ready = []
        for job, outcome in reading.future.result():
            if not isinstance(outcome, _Unread):
                ready.append((job, outcome))
            elif isinstance(outcome.error, jobs.OriginalMissing):
                jobs.fail_job(job.pk, str(outcome.error))
                self.fate[job.pk] = "failed"
            elif not isinstance(outcome.error, (OSError, DatabaseError)) or job.attempts >= settings.MAX_ATTEMPTS:
                error = outcome.error  # not a storage hiccup (or the last try): this job fails alone, with the reason
                jobs.fail_job(job.pk, f"The original image could not be read: {type(error).__name__}: {error}")
                self.fate[job.pk] = "failed"
            elif jobs.release_job(job.pk, self.worker):  # transient: back to the queue, re-sent after a backoff
                _send_later(job.pk, min(60, 2**job.attempts))
                self.fate[job.pk] = "retry"
        return ready

    def judge(self, ready: Judging) -> Judging:
        """One compiled pass for the prepared images of the batch."""
        outcomes = _each_alone(get_predictor().judge_prepared, [outcome for _, outcome in ready])
        return [(job, outcome) for (job, _), outcome in zip(ready, outcomes, strict=True)]

    def record(self, drawing: _Stage) -> None:
        """The drawn batch's outcomes into the database (this thread's connection), once its drawing is done. The
        files it stored are removed unless their rows are saved (jobs.record_stored), whatever fails."""
        drawing.settled = True
        try:
            refused, stored = drawing.future.result()
        except BaseException:  # the drawing failed (it stored nothing), or this wait was interrupted
            drawing.future.add_done_callback(_discard_files)
            raise
        try:
            for job, outcome in refused:
                if isinstance(outcome, ImageRejected):
                    jobs.reject_job(job.pk, str(outcome))
                    self.fate[job.pk] = "rejected"
                else:
                    jobs.fail_job(job.pk, _reason(outcome))
                    self.fate[job.pk] = "failed"
        except BaseException:
            jobs.remove_files([result for _, _, result in stored])
            raise
        done = [(job, prediction) for job, prediction, _ in stored]
        for (job, _), result in zip(done, jobs.record_stored(done, [r for _, _, r in stored]), strict=True):
            self.fate[job.pk] = "done" if result is not None else "skipped: already final"
        # DICOM studies from a peer that takes results: send them back
        pacs.schedule_many([job.study_id for job, _ in done if self.fate[job.pk] == "done"])


def _read_and_prepare(batch: list[Any]) -> Judging:
    """On the helper thread (no database): each job's image prepared for the model from its study's working copy
    (worker.ml.working: the web server decoded it once already), or, where no copy serves, from its original read
    and decoded; or _Unread, when that original cannot be read. Files are read STORAGE_THREADS at a time."""
    predictor = get_predictor()
    copies = [c if isinstance(c, WorkingCopy) else None for c in jobs.storage_map(jobs.read_working_copy, batch)]
    from_copies = iter(_each_alone(predictor.prepare_copies, [c for c in copies if c is not None], alone_raises=False))
    outcomes: list[Any] = [next(from_copies) if copy is not None else None for copy in copies]
    unserved = [k for k, outcome in enumerate(outcomes) if not isinstance(outcome, Prepared)]
    read = jobs.storage_map(jobs.read_original, [batch[k] for k in unserved])
    originals = [k for k, data in zip(unserved, read, strict=True) if isinstance(data, bytes)]
    for k, data in zip(unserved, read, strict=True):
        if not isinstance(data, bytes):  # the main thread decides: failed, or back in the queue for a retry
            outcomes[k] = _Unread(data)
    prepare = lambda ds: predictor.prepare_batch(ds, settings.MAX_IMAGE_PIXELS)  # noqa: E731
    datas = [data for data in read if isinstance(data, bytes)]
    for k, outcome in zip(originals, _each_alone(prepare, datas, alone_raises=False), strict=True):
        outcomes[k] = outcome
    return list(zip(batch, outcomes, strict=True))


Stored = list[tuple[Any, Prediction, Any]]  # (job, prediction, its unsaved Result with the files written)


def _draw(judged: Judging) -> tuple[Judging, Stored]:
    """On the helper thread (no database): each judged image's heatmap and overlay drawn and their files stored.
    Returns those that end otherwise (refused, or the Exception that failed them) and those stored."""
    predictor = get_predictor()
    pending = [(k, outcome) for k, (_, outcome) in enumerate(judged) if isinstance(outcome, Judged)]
    drawn = list(judged)
    for (k, _), outcome in zip(
        pending, _each_alone(predictor.draw, [o for _, o in pending], alone_raises=False), strict=True
    ):
        drawn[k] = (judged[k][0], outcome)
    done = [(job, outcome) for job, outcome in drawn if isinstance(outcome, Prediction)]
    refused = [(job, outcome) for job, outcome in drawn if not isinstance(outcome, Prediction)]
    try:
        results = jobs.store_results(done)  # each result, or why its files could not be written (none are left)
    except Exception as exc:  # storage itself failed: those jobs fail with the reason, alone
        return refused + [(job, exc) for job, _ in done], []
    written = list(zip(done, results, strict=True))
    unwritten = [(job, result) for (job, _), result in written if isinstance(result, Exception)]
    return refused + unwritten, [(job, p, result) for (job, p), result in written if not isinstance(result, Exception)]


def _discard_files(future: Future[Any]) -> None:
    """A drawing's files that will not be recorded: removed once it is done (no database)."""
    if future.cancelled() or future.exception() is not None:
        return
    _, stored = future.result()
    jobs.remove_files([result for _, _, result in stored])


def _each_alone(step: Callable[[list[Any]], list[Any]], items: list[Any], alone_raises: bool = True) -> list[Any]:
    """step over the whole batch in one pass; should that pass itself fail, over each item alone, so that only
    the item that breaks it fails (the Exception in its place; a batch of one raises it unless not alone_raises)."""
    if not items:
        return []
    try:
        return list(step(items))
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        if len(items) == 1:
            if alone_raises:
                raise
            return [exc]
        logger.exception("a batch of %d failed; handling its items one by one", len(items))
    outcomes: list[Any] = []
    for item in items:
        try:
            outcomes.append(step([item])[0])
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
    live = live_workers() if jobs.running_past_grace() else None  # None: no job whose holder needs asking after
    requeued = jobs.requeue_stale_jobs(requeue_queued=inference_backlog() == 0, live_nodes=live)
    pacs.redrive()
    return len(requeued)


@shared_task(name=PRUNE_ORPHAN_FILES)
def prune_orphan_files() -> int:
    run = housekeeping.prune_orphan_files()
    return len(run.orphans) if run.removed else 0


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
