"""Batched inference: claim up to N queued jobs at once in a fair order, judge them in one compiled
pass, record the outcomes together. Built on the state machine of diagnosis.jobs, so its guarantees hold per job:
every claim is a conditional UPDATE (two workers never hold one job), a job is finished at most once, a killed
holder's jobs are re-claimed or re-sent by the sweeper, and MAX_ATTEMPTS bounds the claims.

The fair order, which every batch follows after the jobs its message names:

1. interactive jobs (a page upload, a single-study API call, a DICOM instance) before bulk jobs;
2. within a priority, round-robin between clinics: each clinic's oldest job first, then each clinic's second...;
3. then by id (arrival).

A batch with an interactive job takes no bulk job from this order (only those its message names), so that the
study someone waits for is not judged and drawn with a full batch of another clinic's work.

Each broker message names up to half a batch of jobs (dispatch.enqueue_many; the sweeper re-sends one at a time). The
task that receives it takes those jobs first, all of them even past its own batch size (a worker configured with a
smaller one than the web's), then fills the rest of its batch in this order: the broker's FIFO only says
*when* a worker looks, the database says *what* else it takes. A message whose jobs earlier batches already took,
or finished, claims nothing (a cheap no-op). So a queued job is taken at the latest by its own message, no queued
job outlives the messages (and the sweeper still re-sends a lost one), and a study someone waits for goes into the
very next batch whatever the broker's queue holds before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.conf import settings
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from diagnosis import jobs
from diagnosis.models import InferenceJob, JobPriority, JobStatus

logger = logging.getLogger(__name__)


def fair_order(limit: int) -> list[tuple[int, int]]:
    """(id, priority) of up to `limit` claimable QUEUED jobs in the fair order (not those handed back after a
    transient error whose backoff has not passed: their own message comes then)."""
    turn = Window(RowNumber(), partition_by=[F("priority"), F("study__clinic_id")], order_by=F("id").asc())
    due = Q(status=JobStatus.QUEUED, attempts__lt=settings.MAX_ATTEMPTS, enqueued_at__lte=timezone.now())
    rows = (
        InferenceJob.objects.filter(due)
        .annotate(turn=turn)
        .order_by("priority", "turn", "id")
        .values_list("id", "priority")
    )
    return list(rows[:limit])


def claim_batch(job_ids: Sequence[int], worker: str, size: int, wait_ms: int = 0) -> list[InferenceJob]:
    """The jobs the message names first, those this worker may take (QUEUED, or RUNNING under a holder that is
    gone), then more in the fair order up to `size`. Nothing when it may take none of them (final, or held by a
    live worker): then earlier batches took them, and every job still queued is named by a message to come (or
    the sweeper's), so the message is a cheap no-op.

    A batch of bulk jobs only that is not full waits up to `wait_ms` for more to arrive (a bulk request stores its
    files one group at a time); a batch with an interactive job never waits."""
    taken = set(jobs.claim_queued(job_ids, worker))  # one UPDATE for those queued
    rest = _maybe_claimable([pk for pk in job_ids if pk not in taken])  # one read; then those (rarely any) one by one
    claimed = [pk for pk in job_ids if pk in taken or (pk in rest and jobs.claim_job(pk, worker) is not None)]
    if not claimed:
        return []
    claimed += _fill(claimed, size, worker)
    deadline = time.monotonic() + wait_ms / 1000
    while len(claimed) < size and time.monotonic() < deadline and not _has_interactive(claimed):
        time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        claimed += _fill(claimed, size, worker)
    return _jobs(claimed)


def claim_next(worker: str, size: int) -> list[InferenceJob]:
    """Up to `size` more claimable queued jobs in the fair order, without waiting: the next batch of a task that
    goes on while jobs are queued (diagnosis.pipeline)."""
    return _jobs(_fill([], size, worker))


def _fill(claimed: list[int], size: int, worker: str) -> list[int]:
    """More jobs for a batch that holds `claimed`, in the fair order, up to `size`. A batch with a study someone
    waits for takes no bulk job from the fair order: a full batch takes several times as long to judge and draw
    as a small one, and the study would wait for all of it (the bulk jobs go into the next batch)."""
    if len(claimed) >= size:
        return []
    order = fair_order(size - len(claimed))  # the interactive jobs first, if any
    if order and (order[0][1] == JobPriority.INTERACTIVE or (claimed and _has_interactive(claimed))):
        return jobs.claim_queued([pk for pk, priority in order if priority == JobPriority.INTERACTIVE], worker)
    return jobs.claim_queued([pk for pk, _ in order], worker)


def _jobs(ids: list[int]) -> list[InferenceJob]:
    by_id = InferenceJob.objects.select_related("study").in_bulk(ids)
    return [by_id[pk] for pk in ids if pk in by_id]


def _maybe_claimable(ids: list[int]) -> set[int]:
    """Of `ids`, those jobs.claim_job may take or must give up (jobs.may_claim): still queued (no other worker
    took them since, or they ran out of attempts), or running under a holder that is gone. One read for the lot:
    most jobs a message names were taken by earlier batches (final, or held by a live worker), and a read for each
    would cost a batched worker a large share of its time under the interpreter lock."""
    if not ids:
        return set()
    rows = InferenceJob.objects.filter(pk__in=ids).values_list("pk", "status", "worker")
    return {pk for pk, status, holder in rows if jobs.may_claim(status, holder)}


def _has_interactive(ids: list[int]) -> bool:
    return InferenceJob.objects.filter(pk__in=ids, priority=JobPriority.INTERACTIVE).exists()
