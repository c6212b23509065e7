from pathlib import Path

import pytest

from diagnosis import intake
from diagnosis.models import InferenceJob, JobStatus, Study
from tests import images
from tests.factories import upload_file
from tests.integration.conftest import stuck_model_dir, wait_for
from tests.needs import need_training_images

pytestmark = pytest.mark.integration
FINAL = (JobStatus.DONE, JobStatus.REJECTED, JobStatus.FAILED)


def _status(job_id: int) -> str:
    return InferenceJob.objects.get(pk=job_id).status


def test_real_worker_takes_uploads_to_done_and_rejects_bad_ones(alice, shared_worker) -> None:
    need_training_images()
    worker = shared_worker
    radiographs = [upload_file(f"{label}.jpeg", images.real_radiograph(label, 0)) for label in ("NORMAL", "PNEUMONIA")]
    studies = intake.submit_files(alice, radiographs).studies
    photo = intake.submit_files(alice, [upload_file("noise.png", images.encode(images.colour_noise()))]).studies[0]
    ids = [s.job.pk for s in [*studies, photo]]
    wait_for(lambda: all(_status(i) in FINAL for i in ids), 120, "all jobs final", [worker.log])
    photo_job = InferenceJob.objects.get(pk=photo.job.pk)
    assert photo_job.status == JobStatus.REJECTED and photo_job.reason, worker.log.read_text()[-2000:]
    for s in studies:  # real radiographs of the official validation split: the model must judge them
        assert _status(s.job.pk) == JobStatus.DONE, worker.log.read_text()[-2000:]
        result = Study.objects.get(pk=s.pk).result
        assert result.label in ("NORMAL", "PNEUMONIA") and 0.0 <= result.probability <= 1.0
        assert result.model_version and result.heatmap and result.overlay
    assert worker.proc.poll() is None


def test_killing_the_worker_mid_job_loses_no_study(alice, start_worker, tmp_path: Path) -> None:
    need_training_images()
    stale = {"RUNNING_STALE_SECONDS": "4", "QUEUED_STALE_SECONDS": "4"}
    first = start_worker(**stale, MODEL_DIR=str(stuck_model_dir(tmp_path / "stuck-model")))
    study = intake.submit_files(alice, [upload_file("x.jpeg", images.real_radiograph("NORMAL", 1))]).studies[0]
    wait_for(lambda: _status(study.job.pk) == JobStatus.RUNNING, 60, "the job to start", [first.log])
    first.kill()
    assert _status(study.job.pk) == JobStatus.RUNNING
    second = start_worker(**stale)
    wait_for(
        lambda: _status(study.job.pk) == JobStatus.DONE,
        120,
        "the job to finish on the second worker",
        [first.log, second.log],
    )
    job = InferenceJob.objects.get(pk=study.job.pk)
    assert job.attempts == 2
    assert Study.objects.get(pk=study.pk).result.model_version
