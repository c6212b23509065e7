from unittest import mock

import pytest

from diagnosis import intake
from diagnosis.models import InferenceJob, JobStatus
from diagnosis.task_names import RUN_INFERENCE
from tests import images
from tests.factories import upload_file

pytestmark = pytest.mark.django_db


def test_submit_creates_study_job_and_enqueues_on_commit(alice, django_capture_on_commit_callbacks) -> None:
    with (
        mock.patch("diagnosis.jobs.current_app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        sub = intake.submit_files(alice, [upload_file("x.png")])
    (study,) = sub.studies
    assert sub.errors == []
    assert study.owner == alice and study.original_name == "x.png"
    assert study.job.status == JobStatus.QUEUED
    assert study.image.read() == images.png()
    send.assert_called_once_with(RUN_INFERENCE, args=[study.job.pk])


def test_a_bad_file_does_not_stop_the_others(alice) -> None:
    files = [upload_file("good1.png"), upload_file("bad.png", b"garbage"), upload_file("good2.png")]
    sub = intake.submit_files(alice, files)
    assert [s.original_name for s in sub.studies] == ["good1.png", "good2.png"]
    assert [e.file_name for e in sub.errors] == ["bad.png"]
    assert InferenceJob.objects.count() == 2
