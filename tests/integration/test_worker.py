import numpy as np
import pytest

from diagnosis import intake
from diagnosis.models import InferenceJob, JobStatus
from tests import images
from tests.factories import upload_file
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def _status(job_id: int) -> str:
    return InferenceJob.objects.get(pk=job_id).status


def test_real_worker_takes_uploads_to_done_and_rejects_bad_ones(alice, start_worker) -> None:
    worker = start_worker()
    good = [upload_file(f"chest{i}.png", images.png(300 + i, 280)) for i in range(2)]
    studies = intake.submit_files(alice, good).studies
    photo = intake.submit_files(
        alice,
        [
            upload_file(
                "noise.png",
                images.encode(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)),
            )
        ],
    ).studies[0]
    ids = [s.job.pk for s in [*studies, photo]]
    wait_for(lambda: all(_status(i) in ("done", "rejected") for i in ids), 120, "all jobs final", [worker.log])
    assert _status(photo.job.pk) == JobStatus.REJECTED
    for s in studies:  # synthetic 'chests' may be judged or gated; neither crashes the worker
        assert _status(s.job.pk) in (JobStatus.DONE, JobStatus.REJECTED)
    assert worker.proc.poll() is None


def test_killing_the_worker_mid_job_loses_no_study(alice, start_worker) -> None:
    if not images.SHARED_DATA.exists():
        pytest.skip(images.NO_DATA_REASON)
    stale = {"RUNNING_STALE_SECONDS": "4", "QUEUED_STALE_SECONDS": "4"}
    first = start_worker(**stale)
    study = intake.submit_files(alice, [upload_file("x.jpeg", images.real_radiograph("NORMAL", 1))]).studies[0]
    # The first worker claims the job while its model is still loading, and is killed right then.
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
    assert study.__class__.objects.get(pk=study.pk).result.model_version
