"""`make run`'s launcher on embedded defaults: SQLite, a media folder, an embedded Redis, a real worker, gunicorn."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import images
from xrayweb.launch import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_launcher_starts_everything_and_a_study_reaches_a_final_state(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "DJANGO_SECRET_KEY")
    }
    env.update(XRAY_DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    log = tmp_path / "launch.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xrayweb.launch"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        banner = _wait_for(lambda: re.search(r"Log in as: (\S+) / (\S+)", log.read_text(errors="replace")), 120, log)
        assert f"http://127.0.0.1:{port}/" in log.read_text()
        user, password = banner.group(1), banner.group(2)
        s = requests.Session()
        base = f"http://127.0.0.1:{port}"
        s.get(f"{base}/accounts/login/")
        r = s.post(
            f"{base}/accounts/login/",
            data={"username": user, "password": password, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
        )
        assert r.url.endswith("/upload/")
        data = images.real_radiograph() if images.SHARED_DATA.exists() else images.png()
        r = s.post(
            f"{base}/upload/", files={"images": ("c.jpeg", data)}, data={"csrfmiddlewaretoken": s.cookies["csrftoken"]}
        )
        status_url = r.url + "status/"
        final = _wait_for(lambda: (j := s.get(status_url).json())["final"] and j, 120, log)
        assert final["status"] in ("done", "rejected")
        if images.SHARED_DATA.exists():
            assert final["status"] == "done" and final["result"]["label"] in ("NORMAL", "PNEUMONIA")
        assert (tmp_path / "data" / "db.sqlite3").exists()
        assert list((tmp_path / "data" / "media" / "studies").iterdir())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0


def _wait_for(fn, timeout: float, log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = fn()
        except (requests.RequestException, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out; launcher log:\n{log.read_text(errors='replace')[-4000:]}")
