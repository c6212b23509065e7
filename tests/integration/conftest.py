"""A real Celery worker process against a real Redis and the test database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlparse

import pytest
from django.conf import settings
from django.db import connection

from xrayweb.celery import app as celery_app
from xrayweb.launch import worker_argv

ROOT = Path(__file__).resolve().parents[2]


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when it is set (CI: a database of its own, /15), else a Redis server of the tests' own.

    The tests purge the broker's queues, so they never fall back to a Redis that happens to listen on 6379:
    its database 0 may be someone's.
    """
    url = os.environ.get("REDIS_URL", "")
    proc = None
    if not url:
        from xrayweb.launch import start_embedded_redis

        proc, url = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    elif not _reachable(url):
        pytest.fail(f"REDIS_URL={url} is set but does not answer")
    use_broker(url)
    yield url
    if proc:
        proc.terminate()


@pytest.fixture(autouse=True)
def _broker_is_the_tests(request: pytest.FixtureRequest) -> None:
    """A test that takes redis_url sends to it, whatever an earlier test in another folder pointed the app at (a
    random-order run found the sweeper's test sending to a fault test's stopped server)."""
    if "redis_url" in request.fixturenames:
        use_broker(request.getfixturevalue("redis_url"))


def use_broker(url: str) -> None:
    """Point this process's Celery app at `url`, dropping connections an earlier test may have pooled."""
    celery_app.conf.broker_url = url  # type: ignore[misc]  # read-only in the stubs, settable at runtime
    cast(Any, celery_app)._after_fork()  # what Celery does in a forked child: forget the connection and producer pools


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = quote(s["USER"] or "") + (":" + quote(s["PASSWORD"]) if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def stuck_model_dir(folder: Path) -> Path:
    """A copy of the model folder whose files (all but card.json) are named pipes nobody writes to.

    A worker claims its job (RUNNING) and then waits for ever to read the weights: it holds the job RUNNING
    until it is killed, however fast the real model would have been.
    """
    folder.mkdir()
    for item in Path(settings.MODEL_DIR).iterdir():
        if item.name == "card.json":
            shutil.copy(item, folder / item.name)
        elif item.is_file():
            os.mkfifo(folder / item.name)
    return folder


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [*worker_argv(log.with_suffix(".beat")), "--concurrency", "1"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and children), as a crash or an OOM kill would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM the whole worker and wait until every process of it is gone (a pool child still exiting holds
        its database connection: the test database could not be dropped after it)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


# Workers that outlive a test (the session's shared worker, the fault module's stack). They work on the one test
# database: their sweepers would re-send another test's jobs to their own broker and judge them from their own media
# folder ("the original image is missing"), as random-order runs found. A test that runs its own workers stops them.
LONG_LIVED: list[WorkerProcess] = []


@contextmanager
def long_lived_paused() -> Iterator[None]:
    """SIGSTOP every long-lived worker (its whole process group) for the block, SIGCONT after."""
    paused = [w for w in LONG_LIVED if w.proc.poll() is None]
    for w in paused:
        os.killpg(w.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for w in paused:
            os.killpg(w.proc.pid, signal.SIGCONT)


@contextmanager
def workers_on(broker_url: str, folder: Path, **defaults: str) -> Iterator[Callable[..., WorkerProcess]]:
    """A starter of real workers against the test database and `broker_url` (env: `defaults`, then each call's
    own); every worker it started is stopped on exit. Logs go to `folder`."""
    workers: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": broker_url,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "SWEEP_INTERVAL": "1",
            **defaults,
            **extra,
        }
        worker = WorkerProcess(env, folder / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        for w in workers:
            w.stop()


@pytest.fixture
def start_worker(transactional_db: Any, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    celery_app.control.purge()
    with long_lived_paused(), workers_on(redis_url, tmp_path, DJANGO_SECRET_KEY="integration") as start:
        yield start


@pytest.fixture(scope="session")
def _shared_worker_process(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, Path, str]]:
    """One real worker (shipped defaults), its media folder and its broker, started when the first test asks for it
    and stopped before the test database goes (each start loads the model: tens of seconds on two cores).

    It listens on a Redis of its own, not on redis_url: it lives on between the tests that use it, and on the shared
    broker it took the messages of later tests that start their own worker or count the queue (a random-order run:
    their studies went to this worker, whose media folder is not theirs)."""
    from django.test import override_settings

    from xrayweb.launch import start_embedded_redis

    redis, url = start_embedded_redis(tmp_path_factory.mktemp("shared-worker-redis"))
    media = tmp_path_factory.mktemp("shared-worker-media")
    try:
        with (
            override_settings(MEDIA_ROOT=media),
            workers_on(url, tmp_path_factory.mktemp("shared-worker"), DJANGO_SECRET_KEY="integration") as start,
        ):
            worker = start(SWEEP_INTERVAL="86400")  # its tests never need the sweeper; others' jobs are not its own
            LONG_LIVED.append(worker)
            yield worker, media, url
            LONG_LIVED.remove(worker)
    finally:
        redis.terminate()
        redis.wait(10)


@pytest.fixture
def shared_worker(
    _shared_worker_process: tuple[WorkerProcess, Path, str], transactional_db: Any, settings: Any
) -> Iterator[WorkerProcess]:
    """For a test that only sends a real worker studies (it never stops, stalls or reconfigures it): the session's
    worker, alive, with this process sending to its broker (purged) for the test, and this test's files in the
    worker's media folder."""
    worker, media, url = _shared_worker_process
    assert worker.proc.poll() is None, worker.log.read_text(errors="replace")[-3000:]
    previous = celery_app.conf.broker_url
    use_broker(url)
    celery_app.control.purge()
    settings.MEDIA_ROOT = media
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": media}}
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    yield worker
    use_broker(previous)


@contextmanager
def listening_socket() -> Iterator[socket.socket]:
    """A TCP socket on 127.0.0.1, on a port the kernel chose, already listening: a server process is handed the
    socket itself (gunicorn_on), so no other process can take the port between its choice and the bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.set_inheritable(True)
        yield sock


def gunicorn_on(sock: socket.socket, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`gunicorn xrayweb.wsgi` (one worker) serving on `sock` (gunicorn's fd:// bind), its output to `log`."""
    argv = [sys.executable, "-m", "gunicorn", "xrayweb.wsgi", "--bind", f"fd://{sock.fileno()}", "--workers", "1"]
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, pass_fds=[sock.fileno()]
    )


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, logs: list[Path] | None = None) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    tail = "".join(p.read_text(errors="replace")[-3000:] for p in (logs or []) if p.exists())
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")
