"""A stop is not a failure: stopping a real worker while it holds a batch (SIGTERM or SIGINT to its whole process
group, as the launcher, systemd and Kubernetes do, or SIGTERM to the pool child alone) hands the jobs it holds back
to the queue; after a restart every job ends DONE, none FAILED, none lost."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from diagnosis.models import FINAL_STATUSES, InferenceJob, JobStatus, Result
from tests import images
from tests.factories import token_client, upload_file
from tests.integration.conftest import wait_for
from tests.needs import need_training_images

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _submit(user: User, n: int) -> list[str]:
    files = [
        upload_file(f"{i}.jpeg", images.real_radiograph("PNEUMONIA" if i % 2 else "NORMAL", i % 8)) for i in range(n)
    ]
    answer = token_client(user).post("/api/v1/studies/", {"images": files}, format="multipart")
    assert answer.status_code == 202, answer.content[:300]
    return [s["id"] for s in answer.json()["studies"]]


def _holder_pid() -> int:
    """The pool child that holds a RUNNING job (its worker id ends with its pid)."""
    holder = InferenceJob.objects.filter(status=JobStatus.RUNNING).values_list("worker", flat=True).first()
    assert holder
    return int(holder.rsplit("|", 1)[1])


@pytest.mark.parametrize(
    ("how", "n"),
    [("SIGTERM to the group", 300), ("SIGINT to the group", 24), ("SIGTERM to the pool child", 24)],
)
def test_a_stop_mid_batch_hands_the_jobs_back_and_loses_none(
    alice: User, fault_worker: Any, tmp_path: Path, how: str, n: int
) -> None:
    need_training_images()
    logs = lambda: sorted(tmp_path.glob("worker*.log"))  # noqa: E731
    ids = _submit(alice, n)
    worker = fault_worker(INFERENCE_BATCH_SIZE="8", INFERENCE_BATCH_WAIT_MS="0")
    wait_for(lambda: InferenceJob.objects.filter(status=JobStatus.RUNNING).count() >= 2, 120, "a batch held", logs())
    held = InferenceJob.objects.filter(status=JobStatus.RUNNING).count()
    if how == "SIGTERM to the pool child":
        os.kill(_holder_pid(), signal.SIGTERM)
    else:
        os.killpg(worker.proc.pid, signal.SIGINT if how.startswith("SIGINT") else signal.SIGTERM)
    stopped_at = time.monotonic()
    if how != "SIGTERM to the pool child":
        worker.proc.wait(60)
        failed = list(InferenceJob.objects.filter(status=JobStatus.FAILED).values_list("reason", flat=True))
        assert not failed, f"a stop failed jobs: {failed[:2]}"
        fault_worker(INFERENCE_BATCH_SIZE="8", INFERENCE_BATCH_WAIT_MS="0")
    wait_for(lambda: not InferenceJob.objects.exclude(status__in=FINAL_STATUSES).exists(), 300, "all final", logs())
    statuses = list(InferenceJob.objects.filter(study_id__in=ids).values_list("status", flat=True))
    print(f"\n{how} while {held} jobs were held: all {len(ids)} final {time.monotonic() - stopped_at:.1f} s after it, "
          f"{statuses.count(JobStatus.DONE)} done")  # fmt: skip
    assert held >= 2
    reasons = set(
        InferenceJob.objects.filter(study_id__in=ids, status=JobStatus.FAILED).values_list("reason", flat=True)
    )
    assert statuses == [JobStatus.DONE] * len(ids), reasons
    assert Result.objects.filter(study_id__in=ids).count() == len(ids)
