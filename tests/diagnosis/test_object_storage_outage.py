"""Object storage away is a storage hiccup, as a local disk's OSError is: the job goes back to the queue and is
judged once the store answers, reading its original or writing its result's files. On S3 (django-storages over
boto3) the errors are botocore's, not OSErrors: the cluster suite's 5-second object store restart failed every study
read or written meanwhile ("The original image could not be read: EndpointConnectionError")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from django.contrib.auth.models import User
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from diagnosis import batching, dispatch, jobs, predictor, result_files, tasks
from diagnosis.models import InferenceJob, JobStatus
from tests import factories
from tests.diagnosis.test_batching import _Recorder
from xrayweb.launch import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def later(monkeypatch: Any, settings: Any) -> list[tuple[int, int]]:
    """The predictor recorded, and the jobs sent again after a backoff."""
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS, settings.MAX_ATTEMPTS = 3, 0, 3
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())
    monkeypatch.setattr(dispatch, "send_later", lambda job_id, countdown: sent.append((job_id, countdown)))
    return sent


def test_reading_from_an_object_store_that_does_not_answer_is_a_storage_hiccup(alice: User, settings: Any) -> None:
    study = factories.study(alice)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "gone",
                "endpoint_url": f"http://127.0.0.1:{free_port()}",  # nothing listens: refused
                "access_key": "k",
                "secret_key": "s",
                "region_name": "us-east-1",
                "client_config": Config(retries={"max_attempts": 1}, connect_timeout=1),
            },
        },
    }
    with pytest.raises(result_files.StorageUnavailable) as caught:
        result_files.read_original(InferenceJob.objects.select_related("study").get(pk=study.job.pk))
    assert isinstance(caught.value, OSError) and "EndpointConnectionError" in str(caught.value)


def _unreachable(*args: Any, **kwargs: Any) -> Any:
    raise EndpointConnectionError(endpoint_url="http://object-store:9000/bucket/key")


@pytest.mark.parametrize("call", ["open", "save"], ids=["reading the original", "writing the result"])
def test_a_job_the_store_was_away_for_is_judged_again_until_its_last_attempt(
    alice: User, monkeypatch: Any, later: list[tuple[int, int]], call: str
) -> None:
    job = factories.study(alice).job
    monkeypatch.setattr(FileSystemStorage, call, _unreachable)
    tasks.run_inference(job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.reason, later) == (JobStatus.QUEUED, 1, "", [(job.pk, 2)])
    past = timezone.now() - timedelta(seconds=1)  # its backoff over; the next claim is the last of MAX_ATTEMPTS
    InferenceJob.objects.filter(pk=job.pk).update(attempts=2, enqueued_at=past)
    tasks.run_inference(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "EndpointConnectionError" in job.reason


def test_a_job_handed_back_after_a_hiccup_is_not_taken_before_its_backoff_even_by_a_message_naming_it(
    alice: User,
) -> None:
    """A message that named the job before (or another task's) came at once and spent its next attempt while the
    store was still away: in the cluster suite three attempts went in 3.3 s of a 5-second outage."""
    job = factories.study(alice).job
    assert jobs.claim_job(job.pk, "celery@a|host|1") is not None
    assert jobs.release_job(job.pk, "celery@a|host|1", after=60)
    assert batching.claim_batch([job.pk], "celery@b|host|2", size=8) == []
    InferenceJob.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(seconds=1))
    assert [j.pk for j in batching.claim_batch([job.pk], "celery@b|host|2", size=8)] == [job.pk]
