"""`make run`'s launcher on embedded defaults: SQLite, a media folder, an embedded Redis, a real worker, gunicorn."""

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from tests import images
from xrayweb.launch import READY_FILE, spawn, wait_ready

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_launcher_starts_everything_and_a_study_reaches_a_final_state(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "DJANGO_SECRET_KEY")
    }
    env.pop("DEMO_PASSWORD", None)
    env["PORT"] = "0"  # the launcher picks a free port
    (tmp_path / "data").mkdir()
    # A generated password may begin with "-" (about one start in 64 did not start: argparse read it as an option).
    (tmp_path / "data" / "demo_password").write_text("-Pgqae3rEsFD")
    ready = tmp_path / "data" / READY_FILE
    log = tmp_path / "launch.log"
    proc = spawn(tmp_path / "data", log, env)
    try:
        try:
            info = wait_ready(tmp_path / "data", proc, timeout=120)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}; launcher log:\n{log.read_text(errors='replace')[-4000:]}") from exc
        assert info["pid"] == proc.pid and info["data_dir"] == str(tmp_path / "data")
        assert info["url"] in log.read_text()  # the human banner says the same
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
        assert (tmp_path / "data" / "db.sqlite3").exists()
        assert list((tmp_path / "data" / "media" / "studies").iterdir())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0
    assert not ready.exists()  # a stopped service is not "ready"


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
