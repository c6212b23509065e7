"""The inference pipeline a task runs: claim a batch (diagnosis.batching), read and prepare its images, judge them
in one pass of the model, draw and store their maps, record the outcomes; then, while jobs are queued and time
allows, the next batch. INFERENCE_BATCH_SIZE=1 runs the same pipeline one study at a time (the benchmark's
baseline).

A helper thread reads the next batch and draws the one before while the model judges this one, and this thread
keeps the database: on a CPU the model and the rest share the cores instead of one waiting for the other. A batch
someone waits for at the screen is drawn and recorded before the next batch is read.

Each job ends alone (BatchRun): a missing original FAILED, a bad image REJECTED, a storage hiccup back in the queue
for a retry, a batch whose handling fails (or runs past the soft time limit) FAILED with the reason, each job at
most once (a final job never moves).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from diagnosis import batching, dispatch, jobs, pacs, predictor, result_files
from diagnosis.models import InferenceJob, JobPriority, OperatingPoint
from diagnosis.pipeline_steps import (
    Judging,
    Read,
    Refused,
    Stored,
    Unread,
    discard_files,
    draw_and_store,
    each_alone,
    read_and_prepare,
)
from diagnosis.site import card as model_card
from diagnosis.site import operating_points, verification
from worker.ml.operating_point import OperatingPoint as Point
from worker.ml.prediction import Prepared
from worker.ml.preprocessing import ImageRejected

logger = logging.getLogger(__name__)
A = TypeVar("A")
T = TypeVar("T")
S = TypeVar("S")
# The soft time limit strikes this many seconds before the hard one, so a batch that overran ends FAILED with its
# reason instead of the worker child being killed.
SOFT_LIMIT_MARGIN_SECONDS = 5


def soft_time_limit() -> int:
    return int(settings.INFERENCE_TASK_TIME_LIMIT) - SOFT_LIMIT_MARGIN_SECONDS


def failure_reason(exc: BaseException) -> str:
    """What a job failed by `exc` is told: the soft time limit, or the error."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"Processing took longer than {soft_time_limit()} s; it was stopped."
    return f"Inference failed: {type(exc).__name__}: {exc}"


def run_batches(job_ids: Sequence[int], worker: str) -> str:
    """Claim a batch (the jobs named first, then the fair order) and take it through the pipeline, then the next
    batches while jobs are queued and INFERENCE_DRAIN_SECONDS allow. Returns how the first named job ended, or a
    summary."""
    size = settings.INFERENCE_BATCH_SIZE
    batch = batching.claim_batch(job_ids, worker, size, settings.INFERENCE_BATCH_WAIT_MS)
    if not batch:
        return "skipped: not queued"
    run = BatchRun(worker)
    with ThreadPoolExecutor(1, thread_name_prefix="inference-helper") as helper:
        run.helper = helper
        run.reading = run.start_reading(batch)
        try:
            while run.reading is not None or run.drawing is not None:
                run.next_round()
        except (SystemExit, KeyboardInterrupt):  # a stop (a deploy, a drain, Ctrl-C) is not a failure
            run.hand_back()
            raise
        except BaseException as exc:  # outside the guarded steps (the soft time limit can strike anywhere)
            run.abandon(exc)
            raise
    first = run.ended.get(job_ids[0])
    done = sum(v == "done" for v in run.ended.values())
    return first or f"{run.batches} batch(es) of up to {size}: {done} of {len(run.ended)} done"


def _unzip(
    items: list[tuple[Prepared | Exception, OperatingPoint | None]],
) -> tuple[list[Prepared | Exception], list[Point | None]]:
    return [item for item, _ in items], [row.point() if row is not None else None for _, row in items]


def _waited_for(batch: Sequence[InferenceJob]) -> bool:
    """Whether someone waits at the screen for a study of the batch (an interactive job)."""
    return any(job.priority == JobPriority.INTERACTIVE for job in batch)


@dataclass
class _Stage(Generic[S]):
    """A batch's step running on the helper thread: its jobs and the step's outcome to come. settled: recorded,
    or given up, by this thread; files a drawing stored are removed unless it was recorded."""

    jobs: list[InferenceJob]
    future: Future[S]
    settled: bool = False


class BatchRun:
    """One task's batches, and how each of its jobs ended (`ended`: job id -> done, rejected, failed, retry...)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.ended: dict[int, str] = {}
        self.started = time.monotonic()
        self.batches = 0
        self.stopped = False
        self.helper: ThreadPoolExecutor | None = None
        self.next_reading: _Stage[Read] | None = None
        self.drawing: _Stage[tuple[Refused, Stored]] | None = None
        self.reading: _Stage[Read] | None = None
        self.points: dict[int, OperatingPoint | None] = {}  # each judged job's clinic point (None: the card's)

    def next_round(self) -> None:
        """Judge the batch read, record the one drawn before, queue the judged one's drawing, and make the next
        batch's reading the one to judge. A batch someone waits for is drawn before the next is read, and recorded
        at once."""
        reading = self.reading
        ready = self.guarded(reading.jobs, self.admit_read, reading) if reading is not None else None
        waited_for = reading is not None and _waited_for(reading.jobs)
        if reading is not None and not waited_for:  # the next batch is read while this one is judged
            self.next_reading = self.read_next()
        judged = self.guarded([job for job, _ in ready], self.run_model, ready) if ready else None
        if self.drawing is not None:
            self.guarded(self.drawing.jobs, self.record, self.drawing)
        self.drawing = self.start_drawing(judged) if judged else None
        if waited_for:
            self.next_reading = self.read_next()
            if self.drawing is not None:
                self.guarded(self.drawing.jobs, self.record, self.drawing)
                self.drawing = None
        if self.stopped and self.next_reading is not None:
            self.give_back(self.next_reading)
            self.next_reading = None
        self.reading, self.next_reading = self.next_reading, None

    def start_reading(self, batch: list[InferenceJob]) -> _Stage[Read]:
        assert self.helper is not None
        return _Stage(batch, self.helper.submit(read_and_prepare, batch))

    def start_drawing(self, judged: Judging) -> _Stage[tuple[Refused, Stored]]:
        assert self.helper is not None
        return _Stage([job for job, _ in judged], self.helper.submit(draw_and_store, judged))

    def may_go_on(self) -> bool:
        """Claim another batch: not stopped, and well inside the drain time and the task's soft time limit (three
        batches' time to spare, at the pace so far)."""
        elapsed = time.monotonic() - self.started
        per_batch = elapsed / max(1, self.batches)
        inside = elapsed < settings.INFERENCE_DRAIN_SECONDS and elapsed + 3 * per_batch < soft_time_limit()
        return inside and not self.stopped

    def read_next(self) -> _Stage[Read] | None:
        """The next batch claimed, if the task goes on and jobs are queued, and its reading queued on the helper."""
        more = self.claim_next() if self.may_go_on() else []
        return self.start_reading(more) if more else None

    def claim_next(self) -> list[InferenceJob]:
        """The next batch in the fair order; none, and no more, should claiming fail (the batches in hand go on)."""
        try:
            return batching.claim_next(self.worker, settings.INFERENCE_BATCH_SIZE)
        except SoftTimeLimitExceeded:
            self.stopped = True
        except Exception:
            logger.exception("could not claim a further batch; this task stops after the batches it holds")
            self.stopped = True
        return []

    def guarded(self, batch: Sequence[InferenceJob], step: Callable[[A], T], arg: A) -> T | None:
        """step(arg), or, should it fail, every job of the batch not ended yet FAILED with the reason (None)."""
        try:
            return step(arg)
        except SoftTimeLimitExceeded as exc:
            self.stopped = True
            self.fail_unended(batch, failure_reason(exc))
        except Exception as exc:
            logger.exception("inference failed for the batch of jobs %s", [job.pk for job in batch])
            self.fail_unended(batch, failure_reason(exc))
        return None

    def fail_unended(self, batch: Sequence[InferenceJob], reason: str, quiet: bool = False) -> None:
        """Every job of the batch that has not ended yet: FAILED with the reason (quiet: as far as the database lets
        it, for a loop already breaking off)."""
        for job in batch:
            if job.pk in self.ended:
                continue
            try:
                jobs.fail_job(job.pk, reason)
            except Exception:
                if not quiet:
                    raise
            self.ended[job.pk] = "failed"

    def give_back(self, reading: _Stage[Read]) -> None:
        """A batch claimed ahead, not judged, when the task must stop: back to the queue without the claim counting
        as an attempt, and sent again (should the database fail here, the sweeper re-queues them)."""
        reading.settled = True
        try:
            for job in reading.jobs:
                if jobs.give_back(job.pk, self.worker):
                    dispatch.send_later(job.pk, 0)
        except Exception:
            logger.exception("could not give jobs %s back; the sweeper will", [job.pk for job in reading.jobs])

    def unsettled(self) -> list[_Stage[Any]]:
        """The stages this run holds that are neither recorded nor given up, each marked settled now; a drawing's
        files are removed once it is done, since they will not be recorded."""
        drawing = self.drawing
        if drawing is not None and not drawing.settled:
            drawing.future.add_done_callback(discard_files)
        stages = [s for s in (self.reading, self.next_reading, drawing) if s is not None and not s.settled]
        for stage in stages:
            stage.settled = True
        return stages

    def hand_back(self) -> None:
        """The worker is stopping: every job this run holds that has not ended goes back to the queue, the claim
        not counted as an attempt, and is sent again (should the broker or the database be gone, the sweeper sends
        it after the restart). Nothing is failed: a stop loses no work."""
        held = list(
            dict.fromkeys(job.pk for stage in self.unsettled() for job in stage.jobs if job.pk not in self.ended)
        )
        try:
            returned = [pk for pk in held if jobs.give_back(pk, self.worker)]
            if returned:
                dispatch.send(*returned, per_message=max(1, settings.INFERENCE_BATCH_SIZE // 2))
        except Exception:
            logger.warning("stopping: jobs %s not all handed back; the sweeper will", held, exc_info=True)
            return
        logger.info("stopping: %d jobs handed back to the queue", len(returned))

    def abandon(self, exc: BaseException) -> None:
        """The loop broke off outside a guarded step: every job it holds that has not ended is FAILED with the
        reason (as far as the database lets it), and files drawn for them that were not recorded are removed."""
        for stage in self.unsettled():
            self.fail_unended(stage.jobs, failure_reason(exc), quiet=True)

    def admit_read(self, reading: _Stage[Read]) -> list[tuple[InferenceJob, Prepared | Exception]]:
        """The batch read and prepared: those whose original could not be read end here (a missing one FAILED, a
        storage hiccup back in the queue for a retry); the others go on to the model."""
        self.batches += 1
        ready: list[tuple[InferenceJob, Prepared | Exception]] = []
        for job, outcome in reading.future.result():
            if not isinstance(outcome, Unread):
                ready.append((job, outcome))
            else:
                self.end_unread(job, outcome.error)
        return ready

    def end_unread(self, job: InferenceJob, error: Exception) -> None:
        if isinstance(error, result_files.OriginalMissing):
            jobs.fail_job(job.pk, str(error))
            self.ended[job.pk] = "failed"
        elif not isinstance(error, (OSError, DatabaseError)) or job.attempts >= settings.MAX_ATTEMPTS:
            # not a storage hiccup (or the last try): this job fails alone, with the reason
            jobs.fail_job(job.pk, f"The original image could not be read: {type(error).__name__}: {error}")
            self.ended[job.pk] = "failed"
        elif jobs.release_job(job.pk, self.worker, after=jobs.retry_delay(job.attempts)):  # transient: a backoff
            dispatch.send_later(job.pk, jobs.retry_delay(job.attempts))
            self.ended[job.pk] = "retry"

    def run_model(self, ready: list[tuple[InferenceJob, Prepared | Exception]]) -> Judging:
        """One compiled pass of the model over the prepared images of the batch, each at its clinic's operating
        point in force for this model (none adopted: the card's)."""
        model = predictor.get_predictor()
        clinics = {job.study.clinic_id for job, _ in ready}
        in_force = operating_points.points_for(clinics, model_card.model_version())
        for job, _ in ready:
            self.points[job.pk] = in_force.get(job.study.clinic_id)
        inputs = [(outcome, self.points[job.pk]) for job, outcome in ready]
        outcomes = each_alone(lambda items: model.judge_prepared(*_unzip(items)), inputs)
        return [(job, outcome) for (job, _), outcome in zip(ready, outcomes, strict=True)]

    def record(self, drawing: _Stage[tuple[Refused, Stored]]) -> None:
        """The drawn batch's outcomes into the database, once its drawing is done. The files it stored are removed
        unless their rows are saved (jobs.record_stored), whatever fails."""
        drawing.settled = True
        try:
            refused, stored = drawing.future.result()
        except BaseException:  # the drawing failed (it stored nothing), or this wait was interrupted
            drawing.future.add_done_callback(discard_files)
            raise
        try:
            self.end_refused(refused)
        except BaseException:
            result_files.remove_files([result for _, _, result in stored])
            raise
        for job, _, result in stored:
            result.operating_point = self.points.get(job.pk)
        verification.draw([(job, result) for job, _, result in stored])
        done = [(job, prediction) for job, prediction, _ in stored]
        for (job, _), kept in zip(done, jobs.record_stored(done, [r for _, _, r in stored]), strict=True):
            self.ended[job.pk] = "done" if kept is not None else "skipped: already final"
        # DICOM studies from a peer that takes results: send them back
        pacs.schedule_many([job.study_id for job, _ in done if self.ended[job.pk] == "done"])

    def end_refused(self, refused: Refused) -> None:
        for job, outcome in refused:
            if isinstance(outcome, ImageRejected):
                jobs.reject_job(job.pk, str(outcome))
                self.ended[job.pk] = "rejected"
            elif isinstance(outcome, result_files.StorageUnavailable) and job.attempts < settings.MAX_ATTEMPTS:
                self.end_unread(job, outcome)  # its files could not be written: back to the queue, as for a read
            else:
                jobs.fail_job(job.pk, failure_reason(outcome))
                self.ended[job.pk] = "failed"
