"""The steps of the batch pipeline that run on its helper thread, with no database: reading and preparing a batch's
images, and drawing and storing their maps. diagnosis.pipeline decides on the main thread what becomes of each job.

Each step handles the batch in one pass, and, should that pass fail, each image alone (each_alone): one image that
breaks a step fails only its own job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from diagnosis import predictor, result_files
from diagnosis.models import InferenceJob, Result
from worker.ml.prediction import Judged, Prediction, Prepared
from worker.ml.working import WorkingCopy

logger = logging.getLogger(__name__)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


@dataclass(frozen=True)
class Unread:
    """An original that could not be read: the main thread decides whether its job fails or is retried."""

    error: Exception


Read = list[tuple[InferenceJob, Prepared | Exception | Unread]]  # each job, and its image prepared or why not
Judging = list[tuple[InferenceJob, Judged | Exception]]  # each job, and what the model made of its image
Refused = list[tuple[InferenceJob, Exception]]  # jobs that end without a result, and why
Stored = list[tuple[InferenceJob, Prediction, Result]]  # jobs with a prediction and its unsaved Result, files written


def read_and_prepare(batch: Sequence[InferenceJob]) -> Read:
    """Each job's image prepared for the model from its study's working copy (the web server decoded it once
    already), or, where no copy serves, from its original read and decoded; Unread when that original cannot be
    read. Files are read STORAGE_THREADS at a time."""
    model = predictor.get_predictor()
    copies = [
        c if isinstance(c, WorkingCopy) else None
        for c in result_files.storage_map(result_files.read_working_copy, batch)
    ]
    served = each_alone(model.prepare_copies, [c for c in copies if c is not None], alone_raises=False)
    from_copies = iter(served)
    prepared: list[Prepared | Exception | Unread | None] = [
        next(from_copies) if copy is not None else None for copy in copies
    ]
    unserved = [k for k, outcome in enumerate(prepared) if not isinstance(outcome, Prepared)]
    originals = result_files.storage_map(result_files.read_original, [batch[k] for k in unserved])
    for k, data in zip(unserved, originals, strict=True):
        if not isinstance(data, bytes):
            prepared[k] = Unread(data)
    readable = [k for k, data in zip(unserved, originals, strict=True) if isinstance(data, bytes)]
    datas = [data for data in originals if isinstance(data, bytes)]
    decoded = each_alone(_prepare_originals, datas, alone_raises=False)
    for k, outcome in zip(readable, decoded, strict=True):
        prepared[k] = outcome
    return [(job, outcome) for job, outcome in zip(batch, prepared, strict=True) if outcome is not None]


def _prepare_originals(datas: list[bytes]) -> list[Prepared | Exception]:
    return list(predictor.get_predictor().prepare_batch(datas, settings.MAX_IMAGE_PIXELS))


def draw_and_store(judged: Judging) -> tuple[Refused, Stored]:
    """Each judged image's heatmap and overlay drawn and their files stored. Returns the jobs that end otherwise
    (refused by the model, or the Exception that failed them) and those stored."""
    pending = [(k, outcome) for k, (_, outcome) in enumerate(judged) if isinstance(outcome, Judged)]
    drawn: list[tuple[InferenceJob, Judged | Prediction | Exception]] = list(judged)
    judged_only: list[Judged] = [outcome for _, outcome in pending]
    maps = each_alone(_draw, judged_only, alone_raises=False)
    for (k, _), outcome in zip(pending, maps, strict=True):
        drawn[k] = (judged[k][0], outcome)
    done = [(job, outcome) for job, outcome in drawn if isinstance(outcome, Prediction)]
    refused = [(job, outcome) for job, outcome in drawn if isinstance(outcome, Exception)]
    try:
        results = result_files.store_results(done)  # each result, or why its files could not be written
    except Exception as exc:  # storage itself failed: those jobs fail with the reason, alone
        return refused + [(job, exc) for job, _ in done], []
    written = list(zip(done, results, strict=True))
    unwritten = [(job, result) for (job, _), result in written if isinstance(result, Exception)]
    stored = [(job, p, result) for (job, p), result in written if isinstance(result, Result)]
    return refused + unwritten, stored


def _draw(judged: list[Judged]) -> list[Prediction | Exception]:
    return list(predictor.get_predictor().draw(judged))


def discard_files(future: Future[tuple[Refused, Stored]]) -> None:
    """A drawing's files that will not be recorded: removed once it is done."""
    if future.cancelled() or future.exception() is not None:
        return
    _, stored = future.result()
    result_files.remove_files([result for _, _, result in stored])


def each_alone(
    step: Callable[[list[I]], Sequence[O]], items: list[I], alone_raises: bool = True
) -> list[O | Exception]:
    """step over the whole batch in one pass; should that pass itself fail, over each item alone, so that only
    the item that breaks it fails (the Exception in its place; a batch of one raises it unless not alone_raises).
    The soft time limit is never caught: it stops the task."""
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
    outcomes: list[O | Exception] = []
    for item in items:
        try:
            outcomes.append(step([item])[0])
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            outcomes.append(exc)
    return outcomes
