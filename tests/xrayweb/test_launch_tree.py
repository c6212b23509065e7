"""Issue 11 item 10: when a child of `make run` dies, the launcher stops the whole process tree (no orphaned beat
or pool process logging errors) and exits 1."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from xrayweb.launch import spawn, wait_ready

pytestmark = pytest.mark.integration


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the processes whose parent is `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_worker_stops_the_whole_tree_and_leaves_no_orphan(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT")}
    env.update(PORT="0", DJANGO_SECRET_KEY="t" * 60)
    log = tmp_path / "launch.log"
    proc = spawn(tmp_path / "data", log, env)
    try:
        wait_ready(tmp_path / "data", proc, timeout=180)
        children = _children(proc.pid)
        worker = next(pid for pid, cmd in children.items() if " celery " in f" {cmd} ")
        deadline = time.monotonic() + 60
        while len(_children(worker)) < 2 and time.monotonic() < deadline:  # its beat and its pool process
            time.sleep(0.5)
        descendants = [*children, *_children(worker)]
        assert len(descendants) >= 5, descendants  # redis, worker, gunicorn; the worker's beat and pool child
        os.kill(worker, signal.SIGKILL)
        proc.wait(60)
        assert proc.returncode == 1, log.read_text(errors="replace")[-3000:]
        time.sleep(1)
        left = [pid for pid in descendants if _alive(pid)]
        assert not left, f"left running after the launcher stopped: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in locals().get("descendants", []):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
