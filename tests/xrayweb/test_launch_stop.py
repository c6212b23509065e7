"""Ctrl-C on `make run` while the worker holds a batch: the launcher stops everything, and after the next start every
study is judged, at once; none failed, none lost (issue 28: a stop used to fail the jobs in hand for good)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import images
from tests.needs import need_training_images
from tests.xrayweb.test_launch import _wait_for
from xrayweb.launch import READY_FILE, spawn, wait_ready

pytestmark = pytest.mark.integration


def _statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM diagnosis_inferencejob")]


def _start(data: Path, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    proc = spawn(data, log, env)
    try:
        return proc, wait_ready(data, proc, timeout=120)
    except RuntimeError as exc:
        raise AssertionError(f"{exc}; launcher log:\n{log.read_text(errors='replace')[-4000:]}") from exc


def test_ctrl_c_mid_batch_then_a_restart_judges_every_study(tmp_path: Path) -> None:
    need_training_images()
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "DJANGO_SECRET_KEY")
    }
    # The sweeper would re-send the handed-back studies only after QUEUED_STALE_SECONDS: put out of reach, so that
    # the restart must send them itself (its embedded Redis starts empty; they waited two minutes before).
    env.update(PORT="0", INFERENCE_BATCH_SIZE="8", INFERENCE_BATCH_WAIT_MS="0", QUEUED_STALE_SECONDS="900")
    data, log, db = tmp_path / "data", tmp_path / "launch.log", tmp_path / "data" / "db.sqlite3"
    data.mkdir()
    proc, info = _start(data, log, env)
    try:
        s = requests.Session()
        base = info["url"].rstrip("/")
        s.get(f"{base}/accounts/login/")
        form = {
            "username": info["username"],
            "password": info["password"],
            "csrfmiddlewaretoken": s.cookies["csrftoken"],
        }
        s.post(f"{base}/accounts/login/", data=form)
        files = [
            ("images", (f"{i}.jpeg", images.real_radiograph("NORMAL" if i % 2 else "PNEUMONIA", i % 8)))
            for i in range(24)
        ]
        s.post(f"{base}/upload/", files=files, data={"csrfmiddlewaretoken": s.cookies["csrftoken"]})
        _wait_for(lambda: _statuses(db).count("running") >= 2, 120, log)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        proc.wait(60)
    assert proc.returncode == 0 and not (data / READY_FILE).exists()  # a stopped service is not "ready"
    assert "failed" not in _statuses(db), _statuses(db)
    proc, _ = _start(data, log, env)
    try:
        _wait_for(lambda: all(st in ("done", "failed", "rejected") for st in _statuses(db)) and _statuses(db), 180, log)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0 and not (data / READY_FILE).exists()
    assert _statuses(db) == ["done"] * 24
