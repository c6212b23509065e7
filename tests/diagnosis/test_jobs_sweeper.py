"""The sweeper (jobs.requeue_stale_jobs) and a re-claim's requeue of a gone holder's other jobs: which jobs move,
what they record, the deadlines to the second, and what the operator reads in the log (mutants survived)."""

import logging
import socket
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from diagnosis import dispatch, jobs
from diagnosis.models import InferenceJob, JobStatus
from tests import factories

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
GONE = f"w|{socket.gethostname()}|{2**22 + 4321}"  # no such process on this machine
LIVE = "w|elsewhere|9"  # another machine's: alive unless a ping says otherwise


def _job(user, **columns) -> InferenceJob:
    job = factories.study(user).job
    InferenceJob.objects.filter(pk=job.pk).update(**columns)
    return InferenceJob.objects.get(pk=job.pk)


def _sweep(**kwargs) -> tuple[list[int], mock.MagicMock]:
    """One sweeper round at NOW, the broker mocked."""
    with mock.patch("django.utils.timezone.now", return_value=NOW), mock.patch.object(dispatch, "send") as send:
        return jobs.requeue_stale_jobs(**kwargs), send


@pytest.fixture
def limits(settings):
    settings.RUNNING_STALE_SECONDS = 60
    settings.QUEUED_STALE_SECONDS = 60
    settings.MAX_ATTEMPTS = 3
    return settings


def test_the_sweeper_gives_up_only_on_unfinished_jobs_out_of_attempts_and_not_on_a_fresh_claim(alice, limits, caplog):
    caplog.set_level(logging.INFO, logger="diagnosis.jobs")
    stuck = _job(alice, status=JobStatus.RUNNING, attempts=3, started_at=NOW - timedelta(seconds=61))
    running_now = _job(alice, status=JobStatus.RUNNING, attempts=3, started_at=NOW - timedelta(seconds=1), worker=LIVE)
    done = _job(alice, status=JobStatus.DONE, attempts=3, started_at=NOW - timedelta(hours=1), finished_at=NOW)
    rejected = _job(alice, status=JobStatus.REJECTED, attempts=3, reason="not a radiograph")
    assert _sweep()[0] == []
    rows = {j.pk: j for j in InferenceJob.objects.all()}
    assert (rows[stuck.pk].status, rows[stuck.pk].finished_at) == (JobStatus.FAILED, NOW)
    assert rows[stuck.pk].reason == jobs.gave_up_reason()
    assert rows[running_now.pk].status == JobStatus.RUNNING
    assert (rows[done.pk].status, rows[done.pk].reason) == (JobStatus.DONE, "")
    assert (rows[rejected.pk].status, rows[rejected.pk].reason) == (JobStatus.REJECTED, "not a radiograph")
    assert [r.getMessage() for r in caplog.records] == ["sweeper: gave up on 1 jobs"]


def test_a_requeued_running_job_is_due_from_now_and_not_sent_again_next_round(alice, limits, caplog) -> None:
    caplog.set_level(logging.INFO, logger="diagnosis.jobs")
    old = NOW - timedelta(minutes=5)
    killed = _job(alice, status=JobStatus.RUNNING, attempts=1, started_at=old, enqueued_at=old, worker=LIVE)
    lost = _job(alice, enqueued_at=old)
    requeued, send = _sweep()
    assert sorted(requeued) == sorted([killed.pk, lost.pk])
    assert sorted(c.args[0] for c in send.call_args_list) == sorted(requeued)
    assert {(j.status, j.enqueued_at) for j in InferenceJob.objects.all()} == {(JobStatus.QUEUED, NOW)}
    assert [r.getMessage() for r in caplog.records] == ["sweeper: re-enqueued 2 jobs"]
    assert _sweep()[0] == []


def test_the_running_deadline_and_the_ping_grace_count_to_the_second(alice, limits) -> None:
    at_deadline = _job(alice, status=JobStatus.RUNNING, attempts=1, started_at=NOW - timedelta(seconds=60), worker=LIVE)
    past = _job(alice, status=JobStatus.RUNNING, attempts=1, started_at=NOW - timedelta(seconds=61), worker=LIVE)
    grace = jobs.PING_GRACE_SECONDS
    gone_at_grace = _job(
        alice, status=JobStatus.RUNNING, attempts=1, started_at=NOW - timedelta(seconds=grace), worker=GONE
    )
    gone_just_now = _job(
        alice, status=JobStatus.RUNNING, attempts=1, started_at=NOW - timedelta(seconds=1), worker=GONE
    )
    gone_past = _job(
        alice, status=JobStatus.RUNNING, attempts=1, started_at=NOW - timedelta(seconds=grace + 1), worker=GONE
    )
    requeued = _sweep()[0]
    assert sorted(requeued) == sorted([past.pk, gone_past.pk])
    statuses = dict(InferenceJob.objects.values_list("pk", "status"))
    assert [statuses[j.pk] for j in (at_deadline, gone_at_grace, gone_just_now)] == [JobStatus.RUNNING] * 3


def test_a_job_the_sweeper_cannot_send_is_logged_with_its_id_and_the_error(alice, limits, caplog) -> None:
    lost = _job(alice, enqueued_at=NOW - timedelta(minutes=5))
    with (
        mock.patch("django.utils.timezone.now", return_value=NOW),
        mock.patch.object(dispatch, "send", side_effect=OSError("broker down")),
    ):
        assert jobs.requeue_stale_jobs() == [lost.pk]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == f"sweeper: job {lost.pk} not sent; it is due in the next round"
    assert warning.exc_info is not None and isinstance(warning.exc_info[1], OSError)


def test_only_a_job_still_running_past_the_grace_makes_the_sweeper_ping(alice) -> None:
    long_ago = timezone.now() - timedelta(hours=1)
    _job(alice, status=JobStatus.DONE, started_at=long_ago, finished_at=long_ago)
    _job(alice, status=JobStatus.QUEUED, started_at=long_ago)  # released after a claim: queued, not running
    assert not jobs.running_past_grace()
    _job(alice, status=JobStatus.RUNNING, started_at=long_ago)
    assert jobs.running_past_grace()


def test_a_gone_holders_other_running_jobs_are_queued_now_and_its_finished_ones_stay(alice, caplog) -> None:
    old = timezone.now() - timedelta(hours=1)
    claimed, other = (_job(alice, status=JobStatus.RUNNING, worker=GONE, attempts=1, enqueued_at=old) for _ in range(2))
    finished = _job(alice, status=JobStatus.DONE, worker=GONE, attempts=1, enqueued_at=old)
    with (
        mock.patch("django.utils.timezone.now", return_value=NOW),
        mock.patch.object(dispatch, "enqueue_many") as enqueue,
    ):
        assert jobs.claim_job(claimed.pk, "w|here|1") is not None
    enqueue.assert_called_once_with([other.pk])
    rows = {j.pk: j for j in InferenceJob.objects.all()}
    assert (rows[other.pk].status, rows[other.pk].enqueued_at) == (JobStatus.QUEUED, NOW)
    assert (rows[finished.pk].status, rows[finished.pk].enqueued_at) == (JobStatus.DONE, old)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"jobs [{other.pk}] of {GONE}, which is gone, are queued again" in messages
    assert f"job {claimed.pk}: re-claiming it from {GONE}, which is gone" in messages
