"""What finishing, handing back and claiming a job records (diagnosis/jobs.py): the timings, the reason, which rows
move and which stay (mutants of _finish, finish_done_many, give_back, release_job, claim_queued survived)."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from diagnosis import jobs, result_files
from diagnosis.models import InferenceJob, JobStatus, Result
from tests import factories

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def _job(user, **columns) -> InferenceJob:
    job = factories.study(user).job
    if columns:
        InferenceJob.objects.filter(pk=job.pk).update(**columns)
    return InferenceJob.objects.get(pk=job.pk)


def _at(moment):
    """timezone.now() fixed at `moment`, so the recorded times and durations are exact."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


@pytest.mark.parametrize("finish", [jobs.fail_job, jobs.reject_job])
def test_a_finish_records_when_how_long_and_why(alice, finish) -> None:
    job = _job(alice, status=JobStatus.RUNNING, started_at=NOW - timedelta(seconds=10), attempts=1)
    with _at(NOW):
        assert finish(job.pk, "x" * 3000)
    job.refresh_from_db()
    assert (job.finished_at, job.processing_ms) == (NOW, 10_000)
    assert job.reason == "x" * 2000  # cut to what a page shows, not refused


def test_a_job_finished_before_it_started_took_no_time(alice) -> None:
    job = _job(alice)  # queued, never claimed: no started_at
    with _at(NOW):
        assert jobs.fail_job(job.pk, "gave up")
    job.refresh_from_db()
    assert (job.status, job.finished_at, job.processing_ms, job.reason) == (JobStatus.FAILED, NOW, 0, "gave up")
    assert not jobs.fail_job(job.pk, "again")  # final: nothing moves it


def test_a_finished_batch_records_each_claims_duration_clears_the_reason_and_touches_no_other_job(alice) -> None:
    early = [_job(alice, status=JobStatus.RUNNING, started_at=NOW - timedelta(seconds=10)) for _ in range(2)]
    late = _job(alice, status=JobStatus.RUNNING, started_at=NOW - timedelta(seconds=3), reason="released: storage")
    bystander = _job(alice)  # queued, not in the batch
    with _at(NOW), transaction.atomic():
        done = jobs.finish_done_many([*early, late])
    assert done == {early[0].pk, early[1].pk, late.pk}
    rows = {j.pk: j for j in InferenceJob.objects.all()}
    assert [(rows[j.pk].processing_ms, rows[j.pk].finished_at) for j in early] == [(10_000, NOW)] * 2
    assert (rows[late.pk].status, rows[late.pk].processing_ms, rows[late.pk].reason) == (JobStatus.DONE, 3_000, "")
    assert (rows[bystander.pk].status, rows[bystander.pk].finished_at) == (JobStatus.QUEUED, None)


def test_record_stored_refuses_results_that_do_not_match_the_jobs_and_keeps_nothing(alice) -> None:
    held = [jobs.claim_job(factories.study(alice).job.pk) for _ in range(2)]
    outcomes = [(job, factories.prediction()) for job in held if job is not None]
    stored = result_files.store_results(outcomes)
    written = [r for r in stored if isinstance(r, Result)]
    assert len(written) == 2
    with pytest.raises(ValueError):
        jobs.record_stored(outcomes, written[:1])  # a caller's slip must not pair a result with another study
    assert not Result.objects.exists()
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.RUNNING}
    result_files.remove_files(written)


def test_give_back_returns_only_this_workers_running_claim_uncounted_and_due_now(alice) -> None:
    mine = _job(alice, status=JobStatus.RUNNING, worker="w|h|1", attempts=2, enqueued_at=NOW - timedelta(hours=1))
    assert not jobs.give_back(mine.pk, "w|h|2")  # another worker's claim
    with _at(NOW):
        assert jobs.give_back(mine.pk, "w|h|1")
    mine.refresh_from_db()
    assert (mine.status, mine.attempts, mine.enqueued_at) == (JobStatus.QUEUED, 1, NOW)
    done = _job(alice, status=JobStatus.DONE, worker="w|h|1", attempts=1)
    assert not jobs.give_back(done.pk, "w|h|1")
    done.refresh_from_db()
    assert (done.status, done.attempts) == (JobStatus.DONE, 1)


def test_release_moves_that_job_alone_due_now_unless_told_to_wait(alice) -> None:
    first, second = (_job(alice, status=JobStatus.RUNNING, worker="w|h|1", attempts=1) for _ in range(2))
    with _at(NOW):
        assert jobs.release_job(first.pk, "w|h|1")
    states = {j.pk: (j.status, j.enqueued_at) for j in InferenceJob.objects.all()}
    assert states[first.pk] == (JobStatus.QUEUED, NOW)
    assert states[second.pk][0] == JobStatus.RUNNING
    with _at(NOW):
        assert jobs.release_job(second.pk, after=30)
    assert InferenceJob.objects.get(pk=second.pk).enqueued_at == NOW + timedelta(seconds=30)


@pytest.mark.parametrize(("attempts", "seconds"), [(0, 1), (1, 2), (3, 8), (5, 32), (6, 60), (10, 60)])
def test_the_retry_delay_doubles_up_to_a_minute(attempts, seconds) -> None:
    assert jobs.retry_delay(attempts) == seconds


def test_claim_queued_takes_a_never_tried_job_at_once_but_none_at_the_attempts_cap(alice, settings) -> None:
    settings.MAX_ATTEMPTS = 3
    # The web server's clock a little ahead of the worker's: a job never tried has no backoff to wait out.
    ahead = _job(alice, enqueued_at=timezone.now() + timedelta(seconds=30))
    capped = _job(alice, attempts=3)
    assert jobs.claim_queued([ahead.pk, capped.pk], "w|h|1") == [ahead.pk]
    assert InferenceJob.objects.get(pk=capped.pk).status == JobStatus.QUEUED
