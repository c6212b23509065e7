"""The job state machine is total: every transition from every state, the races between the sweeper and a late
finisher, a holder that is gone, and attempts capped for queued re-sends as well as running ones (issue 15 §2)."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from diagnosis import dispatch, intake, jobs, predictor, tasks
from diagnosis.models import InferenceJob, JobStatus, Result
from tests import factories
from tests.factories import upload_file

pytestmark = pytest.mark.django_db
ALL = list(JobStatus)


def _holder(node: str, pid: int | None = None) -> str:
    """A worker id as liveness.worker_id writes it: this machine, and this process unless a pid is given."""
    return f"{node}|{socket.gethostname()}|{os.getpid() if pid is None else pid}"


LIVE = _holder("celery@live")


def _job(user: Any, status: JobStatus = JobStatus.QUEUED, **fields: Any) -> InferenceJob:
    job = intake.submit_files(user, [upload_file()]).studies[0].job
    InferenceJob.objects.filter(pk=job.pk).update(status=status, started_at=timezone.now(), **fields)
    job.refresh_from_db()
    return job


def _status(job: InferenceJob) -> JobStatus:
    return JobStatus(InferenceJob.objects.get(pk=job.pk).status)


def _dead_holder() -> str:
    """The worker id of a process that has exited (a worker child killed with -9)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return _holder("celery@dead", proc.pid)


EXPECTED = {
    # (from, operation): to
    **{(s, "claim"): s for s in ALL},
    (JobStatus.QUEUED, "claim"): JobStatus.RUNNING,
    **{(s, "release"): s for s in ALL},
    (JobStatus.RUNNING, "release"): JobStatus.QUEUED,
    **{(s, op): s for s in ALL for op in ("reject", "fail", "record")},
    **{(s, "reject"): JobStatus.REJECTED for s in (JobStatus.QUEUED, JobStatus.RUNNING)},
    **{(s, "fail"): JobStatus.FAILED for s in (JobStatus.QUEUED, JobStatus.RUNNING)},
    **{(s, "record"): JobStatus.DONE for s in (JobStatus.QUEUED, JobStatus.RUNNING)},
}


@pytest.mark.parametrize(("start", "operation"), sorted(EXPECTED, key=str))
def test_every_transition(alice, start: JobStatus, operation: str) -> None:
    job = _job(alice, start, worker=LIVE)
    if operation == "claim":
        jobs.claim_job(job.pk, "me")
    elif operation == "release":
        jobs.release_job(job.pk)
    elif operation == "reject":
        jobs.reject_job(job.pk, "not a radiograph")
    elif operation == "fail":
        jobs.fail_job(job.pk, "broken")
    else:
        jobs.record_results([(job, factories.prediction())])[0]
    assert _status(job) == EXPECTED[(start, operation)]
    has_result = Result.objects.filter(study_id=job.study_id).exists()
    assert has_result == (operation == "record" and start in (JobStatus.QUEUED, JobStatus.RUNNING))


def test_a_resent_slow_job_that_finishes_is_done_not_queued(alice, settings) -> None:
    """The sweeper re-queues a slow job; the first run then finishes: DONE with its result; the re-sent
    message then finds nothing to do."""
    settings.RUNNING_STALE_SECONDS = 60
    first = jobs.claim_job(_job(alice).pk, LIVE)
    assert first is not None
    InferenceJob.objects.filter(pk=first.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    with mock.patch("diagnosis.dispatch.current_app.send_task"):
        assert jobs.requeue_stale_jobs() == [first.pk]
    assert _status(first) == JobStatus.QUEUED
    assert jobs.record_results([(first, factories.prediction())])[0] is not None
    assert _status(first) == JobStatus.DONE
    assert jobs.claim_job(first.pk, "second") is None
    assert Result.objects.filter(study_id=first.study_id).count() == 1


def test_a_late_finisher_after_a_reclaim_keeps_one_result(alice) -> None:
    job = _job(alice, JobStatus.RUNNING, worker=_dead_holder(), attempts=1)
    second = jobs.claim_job(job.pk, "second")
    assert second is not None and second.worker == "second" and second.attempts == 2
    jobs.record_results([(job, factories.prediction(probability=0.7))])[0]  # the first run was only slow after all
    jobs.record_results([(second, factories.prediction(probability=0.2))])[0]
    assert Result.objects.get(study_id=job.study_id).probability == 0.7
    assert _status(job) == JobStatus.DONE


def test_a_sweeper_give_up_then_a_late_result_keeps_failed(alice, settings) -> None:
    settings.MAX_ATTEMPTS = 1
    settings.RUNNING_STALE_SECONDS = 60
    job = jobs.claim_job(_job(alice).pk, LIVE)
    assert job is not None
    InferenceJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    with mock.patch("diagnosis.dispatch.current_app.send_task"):
        jobs.requeue_stale_jobs()
    assert _status(job) == JobStatus.FAILED
    assert jobs.record_results([(job, factories.prediction())])[0] is None
    assert _status(job) == JobStatus.FAILED and not Result.objects.exists()


def test_a_redelivered_job_whose_holder_died_is_reclaimed_at_once(alice) -> None:
    """Issue 11 item 11: a worker child killed with -9 leaves the job RUNNING; its redelivered message must
    re-claim it now, not after RUNNING_STALE_SECONDS."""
    job = _job(alice, JobStatus.RUNNING, worker=_dead_holder(), attempts=1)
    claimed = jobs.claim_job(job.pk, "new")
    assert claimed is not None and claimed.status == JobStatus.RUNNING and claimed.worker == "new"


def test_a_job_held_by_a_live_worker_is_not_taken(alice) -> None:
    job = _job(alice, JobStatus.RUNNING, worker=_holder("celery@me"), attempts=1)  # this process: alive
    assert jobs.claim_job(job.pk, "other") is None
    assert InferenceJob.objects.get(pk=job.pk).worker == _holder("celery@me")


def test_the_sweeper_requeues_a_job_whose_node_no_longer_answers(alice, settings) -> None:
    settings.RUNNING_STALE_SECONDS = 600
    old = timezone.now() - timedelta(seconds=jobs.PING_GRACE_SECONDS + 1)
    gone = _job(alice, JobStatus.RUNNING, worker="celery@gone|elsewhere|1", attempts=1)
    alive = _job(alice, JobStatus.RUNNING, worker="celery@up|elsewhere|1", attempts=1)
    InferenceJob.objects.update(started_at=old)
    with mock.patch("diagnosis.dispatch.current_app.send_task"):
        assert jobs.requeue_stale_jobs(live_nodes={"celery@up"}) == [gone.pk]
    assert (_status(gone), _status(alive)) == (JobStatus.QUEUED, JobStatus.RUNNING)


def test_the_sweeper_pings_the_workers_only_for_a_job_running_past_the_grace(alice, settings) -> None:
    """The ping waits a second in the worker that runs the sweeper (in `make run`, the one that judges)."""
    settings.RUNNING_STALE_SECONDS = 600
    job = _job(alice, JobStatus.RUNNING, worker="celery@gone|elsewhere|1", attempts=1)
    with (
        mock.patch("diagnosis.liveness.current_app.control.ping", return_value=[]) as ping,
        mock.patch("diagnosis.dispatch.current_app.send_task"),
    ):
        assert tasks.sweep_stale_jobs() == 0  # running for less than the grace: nobody asked
        assert not ping.called
        InferenceJob.objects.update(started_at=timezone.now() - timedelta(seconds=jobs.PING_GRACE_SECONDS + 1))
        assert tasks.sweep_stale_jobs() == 1  # its node did not answer: back in the queue
    assert ping.call_count == 1 and _status(job) == JobStatus.QUEUED


def test_queued_resends_are_capped_too(alice, settings) -> None:
    """A job claimed MAX_ATTEMPTS times and back in the queue is failed, by the sweeper and by a claim."""
    settings.MAX_ATTEMPTS = 3
    settings.QUEUED_STALE_SECONDS = 1
    swept = _job(alice, JobStatus.QUEUED, attempts=3, enqueued_at=timezone.now() - timedelta(minutes=5))
    claimed = _job(alice, JobStatus.QUEUED, attempts=3)
    with mock.patch("diagnosis.dispatch.current_app.send_task") as send:
        assert jobs.requeue_stale_jobs() == []
    assert not send.called
    assert _status(swept) == JobStatus.FAILED and "3 times" in InferenceJob.objects.get(pk=swept.pk).reason
    assert jobs.claim_job(claimed.pk, "w") is None
    assert _status(claimed) == JobStatus.FAILED


class _Predictor:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def predict(self, data: bytes, max_pixels: int) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def prepare_copies(self, copies: list[Any]) -> list[Any]:
        return [None] * len(copies)  # no copy serves: the originals are read

    def prepare_batch(self, datas: list[bytes], max_pixels: int) -> list[Any]:
        return datas

    def judge_prepared(self, datas: list[bytes], points: Any = None) -> list[Any]:
        return [self.predict(data, 0) for data in datas]

    def draw(self, judged: list[Any]) -> list[Any]:
        return judged  # the real draw passes through what is not a Judged


def test_a_missing_original_fails_the_job_with_a_reason_and_is_never_retried(alice, monkeypatch) -> None:
    job = _job(alice)
    job.study.image.storage.delete(str(job.study.image.name))
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Predictor(factories.prediction()))
    with mock.patch.object(dispatch, "send") as send:
        assert tasks.run_inference(job.pk) == "failed"
    assert not send.called
    stored = InferenceJob.objects.get(pk=job.pk)
    assert stored.status == JobStatus.FAILED and "missing" in stored.reason


@pytest.mark.parametrize(
    ("where", "error", "reason"),
    [
        ("predict", RuntimeError("boom"), "RuntimeError: boom"),
        ("record", RuntimeError("disk full"), "RuntimeError: disk full"),
        ("predict", SoftTimeLimitExceeded(), "longer than"),
        ("record", SoftTimeLimitExceeded(), "longer than"),
    ],
)
def test_unexpected_errors_and_the_soft_time_limit_fail_the_job(alice, monkeypatch, where, error, reason) -> None:
    job = _job(alice)
    outcome = error if where == "predict" else factories.prediction()
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Predictor(outcome))
    if where == "record":
        monkeypatch.setattr(jobs, "record_results", mock.Mock(side_effect=error))
        monkeypatch.setattr(jobs, "record_stored", mock.Mock(side_effect=error))
    assert tasks.run_inference(job.pk) == "failed"
    stored = InferenceJob.objects.get(pk=job.pk)
    assert stored.status == JobStatus.FAILED and reason in stored.reason
