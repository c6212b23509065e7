"""Issue 11: faults driven on real processes while batches run. Each prints its figures (run with -s to see them).

- kill -9 of the inference worker mid-batch: no study lost, recovery in seconds (not RUNNING_STALE_SECONDS);
- SIGSTOP of the broker during uploads: every upload answers within 3 s; after SIGCONT everything is done (when the
  stall meets the first study's ack, the worker must fetch again afterwards: xrayweb.broker, and its own test);
- Redis restarted empty with a batch queued: the sweeper re-sends, nothing is lost;
- Redis restarted: the next upload is sent at once on a new connection, not left to the sweeper.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from diagnosis import dispatch
from diagnosis.models import FINAL_STATUSES, InferenceJob, JobStatus
from tests import images
from tests.factories import token_client, upload_file
from tests.integration.conftest import stuck_model_dir, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]
API = "/api/v1/studies/"


def _radiograph(i: int) -> bytes:
    """A real radiograph when ../shared has them (the model judges it: DONE), else a synthetic one (a final
    state either way: what these tests count is that no study is lost, not the label)."""
    if images.SHARED_DATA.exists():
        return images.real_radiograph("PNEUMONIA" if i % 2 else "NORMAL", i % 8)
    return images.png(320 + i, 256)


def _submit(client: APIClient, n: int, start: int = 0) -> tuple[list[str], float]:
    files = [upload_file(f"{start + i}.png", _radiograph(start + i)) for i in range(n)]
    began = time.monotonic()
    r = client.post(API, {"images": files}, format="multipart")
    took = time.monotonic() - began
    assert r.status_code == 202, r.content[:500]
    return [s["id"] for s in r.json()["studies"]], took


def _unfinished() -> int:
    return InferenceJob.objects.exclude(status__in=FINAL_STATUSES).count()


def _logs(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("worker*.log"))


def test_kill_9_of_the_worker_mid_batch_loses_nothing_and_recovers_in_seconds(
    alice: User, fault_worker, tmp_path: Path
) -> None:
    """The first worker's model files are pipes nobody writes to: it claims the batch and holds it (RUNNING)
    until the kill, however fast the model would have judged it; the second has the real model."""
    client = token_client(alice)
    worker = fault_worker(MODEL_DIR=str(stuck_model_dir(tmp_path / "stuck-model")))
    ids, _ = _submit(client, 12)
    wait_for(lambda: InferenceJob.objects.filter(status=JobStatus.RUNNING).exists(), 120, "the batch to start",
             _logs(tmp_path))  # fmt: skip
    worker.kill()
    killed_at = time.monotonic()
    held = InferenceJob.objects.filter(status=JobStatus.RUNNING).count()
    assert held >= 1 and _unfinished() == 12, "the worker held no job when it was killed"
    fault_worker()
    wait_for(lambda: _unfinished() == 0, 120, "every study final after kill -9", _logs(tmp_path))
    recovery = time.monotonic() - killed_at
    lost = len(ids) - InferenceJob.objects.filter(study_id__in=ids, status__in=FINAL_STATUSES).count()
    failed = InferenceJob.objects.filter(status=JobStatus.FAILED).count()
    stale = settings.RUNNING_STALE_SECONDS
    print(f"\nkill -9 mid-batch: {len(ids)} studies, {held} running at the kill, {lost} lost, {failed} failed, all "
          f"final {recovery:.1f} s after the kill (RUNNING_STALE_SECONDS is {stale})")  # fmt: skip
    assert lost == 0 and failed == 0
    assert recovery < 90


def test_a_stalled_broker_never_stalls_an_upload(alice: User, shared_fault_worker) -> None:
    redis_server, worker = shared_fault_worker
    client = token_client(alice)
    _submit(client, 1)
    wait_for(lambda: _unfinished() == 0, 120, "the first study", [worker.log])
    redis_server.stall()
    latencies = []
    try:
        for i in range(5):
            ids, took = _submit(client, 2, start=10 + 2 * i)
            latencies.append(took)
            assert len(ids) == 2
    finally:
        redis_server.resume()
    resumed = time.monotonic()
    wait_for(lambda: _unfinished() == 0, 120, "every study final after SIGCONT", [worker.log])
    print(f"\nstalled broker: 5 uploads of 2 images answered in {', '.join(f'{t:.2f}' for t in latencies)} s; "
          f"all 11 studies final {time.monotonic() - resumed:.1f} s after SIGCONT")  # fmt: skip
    assert max(latencies) < 3.0
    assert InferenceJob.objects.filter(status__in=FINAL_STATUSES).count() == 11


def test_redis_restarted_empty_the_sweeper_resends(alice: User, fault_worker, redis_server, tmp_path: Path) -> None:
    client = token_client(alice)
    ids, _ = _submit(client, 4)  # queued in Redis; no worker yet
    redis_server.kill()
    redis_server.start()  # empty: the four messages are gone
    restarted = time.monotonic()
    fault_worker()
    wait_for(lambda: _unfinished() == 0, 120, "every study final after the Redis restart", _logs(tmp_path))
    print(f"\nRedis restarted empty: {len(ids)} queued studies re-sent by the sweeper, all final "
          f"{time.monotonic() - restarted:.1f} s after the restart")  # fmt: skip
    assert InferenceJob.objects.filter(study_id__in=ids, status__in=FINAL_STATUSES).count() == len(ids)


def test_the_first_upload_after_a_redis_restart_is_sent_at_once(
    alice: User, fault_worker, redis_server, tmp_path: Path
) -> None:
    """The web's pooled broker connection is dead after a restart: the upload's publish must not fail on it and
    leave the study to the sweeper (here made too slow to rescue it: QUEUED_STALE_SECONDS=600)."""
    client = token_client(alice)
    fault_worker(QUEUED_STALE_SECONDS="600")
    _submit(client, 1)
    wait_for(lambda: _unfinished() == 0, 120, "the first study", _logs(tmp_path))
    redis_server.kill()
    redis_server.start()
    restarted = time.monotonic()
    ids, took = _submit(client, 1, start=1)
    assert dispatch.pause.until == 0.0, "the upload's publish failed: its study was left to the sweeper"
    done = wait_for(lambda: _unfinished() == 0, 60, "the study sent after the restart", _logs(tmp_path))
    print(f"\nRedis restarted: the next upload answered in {took:.2f} s, its study final "
          f"{time.monotonic() - restarted:.1f} s after the restart")  # fmt: skip
    assert InferenceJob.objects.get(study_id=ids[0]).status in FINAL_STATUSES
    assert took < 3.0 and done < 30.0  # at once: the worker is warm, and nothing waits for a sweep


def test_after_the_bad_input_corpus_the_worker_still_takes_a_good_image(alice: User, shared_fault_worker) -> None:
    """Every corpus case through the API (no 5xx), then a real worker: whatever was stored ends final, and a good
    image sent afterwards is judged."""
    from django.core.cache import cache

    from tests import badinput
    from tests.diagnosis.test_bad_input_corpus import submit_api

    _, worker = shared_fault_worker
    client = token_client(alice)
    statuses = []
    for case in badinput.corpus():
        cache.clear()  # the submission throttle is not under test here
        statuses.append(submit_api(client, case).status_code)
    assert all(s < 500 for s in statuses), statuses
    ids, _ = _submit(client, 1, start=99)
    wait_for(lambda: _unfinished() == 0, 180, "every stored study final", [worker.log])
    good = InferenceJob.objects.get(study_id=ids[0])
    stored, errors = InferenceJob.objects.count() - 1, sum(s >= 500 for s in statuses)
    print(f"\nbad-input corpus through the API: {len(statuses)} cases, {errors} 5xx, {stored} studies stored "
          f"from them, all final; the good image after: {good.status}")  # fmt: skip
    assert good.status in (JobStatus.DONE, JobStatus.REJECTED) and worker.proc.poll() is None
    if images.SHARED_DATA.exists():
        assert good.status == JobStatus.DONE
