"""The worker's embedded beat (-B) never outlives its worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from diagnosis.task_names import MAINTENANCE_QUEUE
from tests.integration.conftest import wait_for
from tests.xrayweb.test_launch import _alive, _children
from xrayweb.launch import ROOT, start_embedded_redis, worker_argv


def test_a_workers_beat_exits_when_its_worker_dies(tmp_path: Path) -> None:
    """Killed (or stopped while it starts, when Celery's SIGTERM reaches the beat before its handlers: a test's
    teardown met that), the worker leaves no beat behind to send sweeps on its own."""
    (tmp_path / "redis").mkdir()
    redis, url = start_embedded_redis(tmp_path / "redis")
    env = {
        **os.environ,
        "REDIS_URL": url,
        "XRAY_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SWEEP_INTERVAL": "86400",
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            worker_argv(tmp_path / "beat", (MAINTENANCE_QUEUE,)),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        beats: list[int] = []

        def beat_started() -> bool:
            beats[:] = [pid for pid, cmd in _children(worker.pid).items() if cmd.startswith("[celery beat]")]
            return bool(beats) and "beat: Starting" in log.read_text(errors="replace")

        wait_for(beat_started, 60, "the worker's beat to start", [log])
        time.sleep(1)
        assert _alive(beats[0]), "the beat exited with its worker alive"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        wait_for(lambda: not _alive(beats[0]), 10, f"the beat {beats[0]} to exit after its worker (it outlived it)")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        redis.terminate()
        redis.wait(10)
