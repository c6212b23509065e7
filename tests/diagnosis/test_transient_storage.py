"""A storage hiccup is not a bad image: an OSError reading a study's original (object storage answering 503, an NFS
blip) hands the job back to the queue, re-sent after a backoff, until its last attempt; and only the worker that
holds a job may hand it back."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from diagnosis import dispatch, jobs, predictor, tasks
from diagnosis.models import InferenceJob, JobStatus
from tests import factories
from tests.diagnosis.test_batching import _Recorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_unreadable(alice: User, monkeypatch: Any, settings: Any) -> tuple[list[int], int, list[tuple[int, int]]]:
    """Three queued studies whose second original cannot be read (OSError); the sends after a backoff recorded."""
    from django.core.files.storage import FileSystemStorage

    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS, settings.MAX_ATTEMPTS = 3, 0, 3
    studies = [factories.study(alice) for _ in range(3)]
    unreadable, real_open = studies[1], FileSystemStorage.open

    def open_fails_for_one(self: Any, name: str, mode: str = "rb") -> Any:
        if str(unreadable.pk) in name:
            raise OSError(5, "Input/output error")
        return real_open(self, name, mode)

    later: list[tuple[int, int]] = []
    monkeypatch.setattr(FileSystemStorage, "open", open_fails_for_one)
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())
    monkeypatch.setattr(dispatch, "send_later", lambda job_id, countdown: later.append((job_id, countdown)))
    return [s.job.pk for s in studies], unreadable.job.pk, later


def test_an_oserror_reading_an_original_puts_the_job_back_with_a_backoff(one_unreadable: Any) -> None:
    ids, unreadable, later = one_unreadable
    tasks.run_inference(ids[0])
    job = InferenceJob.objects.get(pk=unreadable)
    assert (job.status, job.attempts, job.reason) == (JobStatus.QUEUED, 1, "")
    assert later == [(unreadable, 2)]  # 2 ** attempts seconds
    others = InferenceJob.objects.filter(pk__in=ids).exclude(pk=unreadable)
    assert set(others.values_list("status", flat=True)) == {JobStatus.DONE}


def test_the_last_attempt_fails_it_with_the_reason(one_unreadable: Any) -> None:
    ids, unreadable, later = one_unreadable
    InferenceJob.objects.filter(pk=unreadable).update(attempts=2)  # the claim makes it the third of MAX_ATTEMPTS
    tasks.run_inference(ids[0])
    job = InferenceJob.objects.get(pk=unreadable)
    assert job.status == JobStatus.FAILED and "Input/output error" in job.reason and later == []


def test_only_the_holder_hands_a_job_back(alice: User) -> None:
    job = factories.study(alice).job
    assert jobs.claim_job(job.pk, "celery@a|host|1") is not None
    assert not jobs.release_job(job.pk, "celery@b|host|2")  # the sweeper gave it to another worker meanwhile
    assert InferenceJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert jobs.release_job(job.pk, "celery@a|host|1")
    assert InferenceJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
