"""Reading a job's image from storage and writing its result's files, with no database: a worker's helper thread
calls these while its main thread keeps the database (diagnosis.pipeline).

Object storage answers each call in tens of milliseconds, so a batch's files are read and written
STORAGE_THREADS at a time (storage_map).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from django.conf import settings
from django.core.files.base import ContentFile

from diagnosis.models import RESULT_FILE_FIELDS, InferenceJob, Result
from worker.ml import working
from worker.ml.prediction import Prediction
from worker.ml.working import WorkingCopy

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


try:  # object storage's errors (django-storages over boto3): no answer, or an error answer such as 503 SlowDown
    from botocore.exceptions import BotoCoreError, ClientError

    OBJECT_STORE_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
except ImportError:  # no boto3: no object storage
    OBJECT_STORE_ERRORS = ()


class OriginalMissing(Exception):
    """The study's original image cannot be read (deleted, or never stored): final, never retried."""


class StorageUnavailable(OSError):
    """Object storage did not answer, or answered with an error (not "no such file"): a hiccup like a local disk's
    OSError, so the job goes back to the queue (diagnosis.pipeline) instead of failing."""


@contextmanager
def object_store_errors_as_os_errors() -> Iterator[None]:
    try:
        yield
    except OBJECT_STORE_ERRORS as exc:
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc


def read_original(job: InferenceJob) -> bytes:
    try:
        with object_store_errors_as_os_errors(), job.study.image.open("rb") as fh:
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


class _Pool:
    """The storage threads, made on first use (a web process never needs them)."""

    executor: ThreadPoolExecutor | None = None
    lock = threading.Lock()


pool = _Pool()


def storage_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
    """fn over items, in order, on STORAGE_THREADS threads (storage calls only, no database): each item's result,
    or the Exception it raised."""

    def each(item: T) -> R | Exception:
        try:
            return fn(item)
        except Exception as exc:
            return exc

    if settings.STORAGE_THREADS <= 1 or len(items) <= 1:
        return [each(item) for item in items]
    with pool.lock:
        if pool.executor is None:
            pool.executor = ThreadPoolExecutor(settings.STORAGE_THREADS, thread_name_prefix="storage")
    return list(pool.executor.map(each, items))


def store_results(outcomes: Sequence[tuple[InferenceJob, Prediction]]) -> list[Result | Exception]:
    """Each job's unsaved Result with its heatmap and overlay files written (storage_map), or the Exception that
    stopped its files being written (none of them is left; object storage away: StorageUnavailable)."""

    def one(outcome: tuple[InferenceJob, Prediction]) -> Result:
        with object_store_errors_as_os_errors():
            return unsaved_result(*outcome)

    return storage_map(one, outcomes)


def unsaved_result(job: InferenceJob, prediction: Prediction) -> Result:
    """The job's Result with its heatmap and overlay files already stored; the row is not saved yet."""
    result = Result(
        study_id=job.study_id,
        label=prediction.label,
        probability=prediction.probability,
        threshold=prediction.threshold,
        model_version=prediction.model_version,
        inference_ms=prediction.inference_ms,
        logit=prediction.logit,
        runtime=prediction.runtime,
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


def remove_files(results: Sequence[Result]) -> None:
    """The heatmap and overlay files of results whose rows are not saved; one that cannot be removed is logged and
    the others are still removed (whatever error led here is the one that matters)."""
    for result in results:
        for file in (getattr(result, name) for name in RESULT_FILE_FIELDS):
            try:
                file.delete(save=False)
            except Exception:
                logger.warning("could not remove %s", file.name, exc_info=True)
