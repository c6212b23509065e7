"""`make run`'s launcher on embedded defaults: SQLite, a media folder, an embedded Redis, a real worker, gunicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import images
from xrayweb.launch import spawn, wait_ready

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_launcher_starts_everything_a_study_reaches_a_final_state_and_a_dead_worker_stops_the_tree(
    tmp_path: Path,
) -> None:
    """One stack for two checks (each start loads the model: a minute on two cores): a study through the launched
    service to a final state; then, issue 11 item 10, a child of `make run` that dies (the worker, SIGKILL) makes
    the launcher stop the whole process tree (no orphaned beat or pool process logging errors) and exit 1. A clean
    stop (Ctrl-C: exit 0, the ready file removed) is tests/xrayweb/test_launch_stop.py's."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "DJANGO_SECRET_KEY")
    }
    env.pop("DEMO_PASSWORD", None)
    env["PORT"] = "0"  # the launcher picks a free port
    (tmp_path / "data").mkdir()
    # A generated password may begin with "-" (about one start in 64 did not start: argparse read it as an option).
    (tmp_path / "data" / "demo_password").write_text("-Pgqae3rEsFD")
    log = tmp_path / "launch.log"
    proc = spawn(tmp_path / "data", log, env)
    descendants: list[int] = []
    try:
        try:
            info = wait_ready(tmp_path / "data", proc, timeout=120)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}; launcher log:\n{log.read_text(errors='replace')[-4000:]}") from exc
        assert info["pid"] == proc.pid and info["data_dir"] == str(tmp_path / "data")
        assert info["url"] in log.read_text()  # the human banner says the same
        _a_study_reaches_a_final_state(info, tmp_path / "data", log)
        descendants = _kill_the_worker(proc, log)
        time.sleep(1)
        left = [pid for pid in descendants if _alive(pid)]
        assert not left, f"left running after the launcher stopped: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in descendants:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _a_study_reaches_a_final_state(info: dict[str, Any], data_dir: Path, log: Path) -> None:
    user, password = info["username"], info["password"]
    assert password == "-Pgqae3rEsFD"
    s = requests.Session()
    base = info["url"].rstrip("/")
    s.get(f"{base}/accounts/login/")
    r = s.post(
        f"{base}/accounts/login/",
        data={"username": user, "password": password, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
    )
    assert r.url.endswith("/upload/")
    # Without ../shared, a colour photograph: the gate must reject it with a reason (asserted below).
    real = images.SHARED_DATA.exists()
    data = images.real_radiograph() if real else images.encode(images.colour_noise())
    r = s.post(
        f"{base}/upload/", files={"images": ("c.jpeg", data)}, data={"csrfmiddlewaretoken": s.cookies["csrftoken"]}
    )
    status_url = r.url + "status/"
    final = _wait_for(lambda: (j := s.get(status_url).json())["final"] and j, 120, log)
    if real:
        assert final["status"] == "done" and final["result"]["label"] in ("NORMAL", "PNEUMONIA"), final
    else:
        assert final["status"] == "rejected" and final["reason"], final
    assert (data_dir / "db.sqlite3").exists()
    assert list((data_dir / "media" / "studies").iterdir())


def _kill_the_worker(proc: subprocess.Popen[bytes], log: Path) -> list[int]:
    """SIGKILL the launcher's worker once its beat and pool child run; the launcher must exit 1. Every process of
    the tree as it was before the kill."""
    children = _children(proc.pid)
    worker = next(pid for pid, cmd in children.items() if "celery" in cmd)  # "-m celery", or its process title
    deadline = time.monotonic() + 60
    while len(_children(worker)) < 2 and time.monotonic() < deadline:  # its beat and its pool process
        time.sleep(0.5)
    descendants = [*children, *_children(worker)]
    assert len(descendants) >= 5, descendants  # redis, worker, gunicorn; the worker's beat and pool child
    os.kill(worker, signal.SIGKILL)
    proc.wait(60)
    assert proc.returncode == 1, log.read_text(errors="replace")[-3000:]
    return descendants


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


def _wait_for(fn, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = fn()
        except (requests.RequestException, ValueError, KeyError, FileNotFoundError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out; launcher log:\n{log.read_text(errors='replace')[-4000:]}")
