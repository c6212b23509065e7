"""Issue 12: kill -9 of a real worker while it holds a batch (several jobs RUNNING at once): every job still ends
DONE, none twice, none failed; the next worker (and the sweeper) take the held jobs over."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from diagnosis.models import FINAL_STATUSES, InferenceJob, JobStatus, Result
from tests import images
from tests.factories import token_client, upload_file
from tests.integration.conftest import wait_for
from tests.needs import need_training_images

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_kill_9_mid_batch_every_job_still_ends_done(alice: User, fault_worker, tmp_path: Path) -> None:
    need_training_images()
    logs = lambda: sorted(tmp_path.glob("worker*.log"))  # noqa: E731
    files = [
        upload_file(f"{i}.jpeg", images.real_radiograph("PNEUMONIA" if i % 2 else "NORMAL", i % 8)) for i in range(24)
    ]
    r = token_client(alice).post("/api/v1/studies/", {"images": files}, format="multipart")
    assert r.status_code == 202, r.content[:300]
    ids = [s["id"] for s in r.json()["studies"]]
    worker = fault_worker(INFERENCE_BATCH_SIZE="8", INFERENCE_BATCH_WAIT_MS="0")
    wait_for(lambda: InferenceJob.objects.filter(status=JobStatus.RUNNING).count() >= 2, 120, "a batch held", logs())
    worker.kill()
    killed_at = time.monotonic()
    held = InferenceJob.objects.filter(status=JobStatus.RUNNING).count()
    fault_worker(INFERENCE_BATCH_SIZE="8", INFERENCE_BATCH_WAIT_MS="0")
    wait_for(lambda: not InferenceJob.objects.exclude(status__in=FINAL_STATUSES).exists(), 120, "all final", logs())
    statuses = list(InferenceJob.objects.filter(study_id__in=ids).values_list("status", flat=True))
    print(f"\nkill -9 mid-batch: {held} jobs held at the kill, all {len(ids)} final "
          f"{time.monotonic() - killed_at:.1f} s after it")  # fmt: skip
    assert held >= 2
    assert statuses == [JobStatus.DONE] * len(ids)
    assert Result.objects.filter(study_id__in=ids).count() == len(ids)
