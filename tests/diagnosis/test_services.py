from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from diagnosis import services
from diagnosis.models import InferenceJob, JobStatus, Result
from tests import images
from tests.conftest import upload_file

pytestmark = pytest.mark.django_db


def test_submit_creates_study_job_and_enqueues_on_commit(alice, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with (
        mock.patch("diagnosis.services.current_app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        sub = services.submit_files(alice, [upload_file("x.png")])
    (study,) = sub.studies
    assert sub.errors == []
    assert study.owner == alice and study.original_name == "x.png"
    assert study.job.status == JobStatus.QUEUED
    assert study.image.read() == images.png()
    send.assert_called_once_with(services.INFERENCE_TASK, args=[study.job.pk])


def test_a_bad_file_does_not_stop_the_others(alice) -> None:  # type: ignore[no-untyped-def]
    files = [upload_file("good1.png"), upload_file("bad.png", b"garbage"), upload_file("good2.png")]
    sub = services.submit_files(alice, files)
    assert [s.original_name for s in sub.studies] == ["good1.png", "good2.png"]
    assert [e.file_name for e in sub.errors] == ["bad.png"]
    assert InferenceJob.objects.count() == 2


def _study(user):  # type: ignore[no-untyped-def]
    return services.submit_files(user, [upload_file()]).studies[0]


def test_claim_is_atomic_and_only_once(alice) -> None:  # type: ignore[no-untyped-def]
    job = _study(alice).job
    claimed = services.claim_job(job.pk)
    assert claimed is not None and claimed.status == JobStatus.RUNNING and claimed.attempts == 1
    assert services.claim_job(job.pk) is None


def test_record_result_twice_keeps_one_result(alice) -> None:  # type: ignore[no-untyped-def]
    job = services.claim_job(_study(alice).job.pk)
    assert job is not None
    prediction = mock.Mock(
        label="PNEUMONIA",
        probability=0.9,
        threshold=0.4,
        model_version="v1",
        heatmap_png=b"\x89PNGheat",
        overlay_png=b"\x89PNGover",
        inference_ms=12,
    )
    services.record_result(job, prediction)
    services.record_result(job, prediction)
    assert Result.objects.count() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.processing_ms is not None
    assert job.study.result.heatmap.read() == b"\x89PNGheat"


def test_reject_is_final(alice) -> None:  # type: ignore[no-untyped-def]
    job = services.claim_job(_study(alice).job.pk)
    assert job is not None
    assert services.reject_job(job.pk, "not a radiograph")
    job.refresh_from_db()
    assert (job.status, job.reason) == (JobStatus.REJECTED, "not a radiograph")
    assert services.claim_job(job.pk) is None


def test_sweeper_requeues_stale_jobs_and_gives_up_after_max_attempts(alice, settings) -> None:  # type: ignore[no-untyped-def]
    settings.RUNNING_STALE_SECONDS = 60
    settings.QUEUED_STALE_SECONDS = 60
    settings.MAX_ATTEMPTS = 3
    old = timezone.now() - timedelta(minutes=5)
    lost_message = _study(alice).job
    InferenceJob.objects.filter(pk=lost_message.pk).update(enqueued_at=old)
    killed_worker = _study(alice).job
    InferenceJob.objects.filter(pk=killed_worker.pk).update(status=JobStatus.RUNNING, started_at=old, attempts=1)
    poison = _study(alice).job
    InferenceJob.objects.filter(pk=poison.pk).update(status=JobStatus.RUNNING, started_at=old, attempts=3)
    fresh = _study(alice).job
    with mock.patch("diagnosis.services.current_app.send_task") as send:
        requeued = services.requeue_stale_jobs()
    assert sorted(requeued) == sorted([lost_message.pk, killed_worker.pk])
    assert send.call_count == 2
    statuses = dict(InferenceJob.objects.values_list("pk", "status"))
    assert statuses[killed_worker.pk] == JobStatus.QUEUED
    assert statuses[poison.pk] == JobStatus.FAILED
    assert statuses[fresh.pk] == JobStatus.QUEUED
    with mock.patch("diagnosis.services.current_app.send_task"):
        assert services.requeue_stale_jobs() == []  # the re-enqueued ones got a new deadline


def test_sweeper_leaves_queued_jobs_alone_while_the_broker_has_a_backlog(alice, settings) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUED_STALE_SECONDS = 60
    waiting = _study(alice).job
    InferenceJob.objects.filter(pk=waiting.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    with mock.patch("diagnosis.services.current_app.send_task") as send:
        assert services.requeue_stale_jobs(requeue_queued=False) == []
        assert services.requeue_stale_jobs(requeue_queued=True) == [waiting.pk]
    assert send.call_count == 1
