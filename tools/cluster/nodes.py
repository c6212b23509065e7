"""A node of the cluster: one process tree of its own (its own session, so a kill takes the whole tree), started in
its own empty working folder, with its own MEDIA_ROOT, data folder, home and temporary folder, which no other node
is told about. All it shares with the others is what its environment names: the database, Redis, the bucket."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from diagnosis.task_names import INFERENCE_QUEUE, MAINTENANCE_QUEUE
from xrayweb.launch import ROOT, child, stop, web_argv, worker_argv

FOLDERS = ("work", "media", "data", "home", "tmp")
# What the environment of a node keeps from the one that starts it: nothing that names a place or a service.
KEPT = ("PATH", "LANG", "LC_ALL", "TZ")


class Node:
    def __init__(self, name: str, root: Path, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.folder, self.argv = name, root / name, argv
        for sub in FOLDERS:
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: os.environ[k] for k in KEPT if k in os.environ},
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "xrayweb.settings",
            "MEDIA_ROOT": str(self.folder / "media"),
            "XRAY_DATA_DIR": str(self.folder / "data"),
            "HOME": str(self.folder / "home"),
            "TMPDIR": str(self.folder / "tmp"),
            **env,
        }
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.since = 0

    def start(self) -> Node:
        self.since = self.log.stat().st_size if self.log.exists() else 0  # logged() reads this start's lines only
        with self.log.open("ab") as out:
            self.proc = child(self.argv, cwd=self.folder / "work", env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def run(self, *argv: str) -> str:
        """Run a command to its end as this node (its folders, its environment); its output."""
        done = subprocess.run(
            argv, cwd=self.folder / "work", env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{self.name}: {' '.join(argv[:4])} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
        return done.stdout

    def manage(self, *args: str) -> str:
        return self.run(sys.executable, str(ROOT / "manage.py"), *args)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole tree at once, as a machine that dies or an OOM kill would."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            stop([self.proc])

    def logged(self, pattern: str) -> bool:
        """Whether this start of the node has logged a line matching `pattern`."""
        if not self.log.exists():
            return False
        with self.log.open("rb") as fh:
            fh.seek(self.since)
            return re.search(pattern, fh.read().decode(errors="replace")) is not None

    def files(self) -> list[Path]:
        """Every file this node has on its own disk."""
        return sorted(p for p in self.folder.rglob("*") if p.is_file())


def web_node(name: str, root: Path, env: dict[str, str], logs: Path, port: int) -> Node:
    return Node(name, root, web_argv(port), env, logs)


def inference_node(name: str, root: Path, env: dict[str, str], logs: Path) -> Node:
    argv = [*worker_argv(None, (INFERENCE_QUEUE,)), "-n", f"{name}@%h"]
    return Node(name, root, argv, {**env, "CELERY_WORKER_CONCURRENCY": "1"}, logs)


def maintenance_node(name: str, root: Path, env: dict[str, str], logs: Path) -> Node:
    beat = root / name / "data" / "celerybeat-schedule"
    argv = [*worker_argv(beat, (MAINTENANCE_QUEUE,)), "-n", f"{name}@%h"]
    return Node(name, root, argv, {**env, "CELERY_WORKER_CONCURRENCY": "1"}, logs)


def dicom_node(name: str, root: Path, env: dict[str, str], logs: Path, port: int) -> Node:
    argv = [sys.executable, str(ROOT / "manage.py"), "dicom_listener", "--host", "127.0.0.1", "--port", str(port)]
    return Node(name, root, argv, env, logs)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
