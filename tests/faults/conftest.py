"""Real processes under faults: a redis-server of the test's own on a free port (so SIGSTOP or a restart never
touches a Redis anyone else uses), a real Celery worker against it and the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import pools as kombu_pools

from tests.integration.conftest import LONG_LIVED, WorkerProcess, long_lived_paused, workers_on
from xrayweb.celery import app as celery_app
from xrayweb.launch import free_port, redis_server_binary


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: kill -9, SIGSTOP and restarts of real processes (slow; CI runs them with the rest)"
    )


class RedisServer:
    """A redis-server this test owns: stall it (SIGSTOP/SIGCONT), or kill it and start it again empty."""

    def __init__(self, folder: Path) -> None:
        """redis-server binds the port it is given (it cannot be handed a socket): chosen free, the port may be
        taken before it binds it, so the first start tries others; a restart keeps its port (the URL is fixed)."""
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        for _ in range(3):
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            if self.start(fail=False):
                return
        raise RuntimeError(f"redis-server did not start\n{(folder / 'redis.log').read_text(errors='replace')}")

    def start(self, fail: bool = True) -> bool:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self._answers_as_ours():
                return True
            time.sleep(0.05)
        self.kill()
        if fail:
            raise RuntimeError(f"redis-server did not start on port {self.port} (taken meanwhile?)")
        return False

    def _answers_as_ours(self) -> bool:
        """The server on the port is this process (INFO's process_id), not another that took the port first."""
        assert self.proc is not None
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"INFO server\r\n")
                return f"process_id:{self.proc.pid}\r".encode() in s.recv(65536)
        except OSError:
            return False

    def stall(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


def use_broker(url: str) -> None:
    """Point this process's Celery app at `url`, dropping the connections it pooled for the previous one."""
    celery_app.conf.broker_url = url  # type: ignore[misc]  # read-only in the stubs, settable at runtime
    app: Any = celery_app  # the pools are private attributes, reset as Celery does after a fork
    kombu_pools.reset()  # closes and forgets kombu's registry of pools, so none is reused closed
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    previous = celery_app.conf.broker_url
    use_broker(server.url)
    yield server
    server.kill()
    use_broker(previous)


@pytest.fixture
def fault_worker(
    transactional_db: Any, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real workers on the test's Redis; a short sweep so that recovery is measured in seconds."""
    with (
        long_lived_paused(),
        workers_on(redis_server.url, tmp_path, DJANGO_SECRET_KEY="faults", QUEUED_STALE_SECONDS="3") as start,
    ):
        yield start


@pytest.fixture(scope="module")
def _fault_stack(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RedisServer, WorkerProcess, Path]]:
    """A redis-server and a real worker on it (a short sweep), with their media folder, for the module's tests that
    stall the broker but never stop the worker: one model load for them all."""
    from django.test import override_settings

    folder = tmp_path_factory.mktemp("fault-stack")
    server = RedisServer(folder)
    try:
        with (
            override_settings(MEDIA_ROOT=folder / "media"),
            workers_on(server.url, folder, DJANGO_SECRET_KEY="faults", QUEUED_STALE_SECONDS="3") as start,
        ):
            worker = start()
            LONG_LIVED.append(worker)  # paused while a test of the module runs workers of its own (fault_worker)
            yield server, worker, folder / "media"
            LONG_LIVED.remove(worker)
    finally:
        server.kill()


@pytest.fixture
def shared_fault_worker(
    _fault_stack: tuple[RedisServer, WorkerProcess, Path], transactional_db: Any, settings: Any
) -> Iterator[tuple[RedisServer, WorkerProcess]]:
    """The module's redis-server (running, whatever an earlier test did to it) and worker (alive), this process's
    Celery app pointed at that server, and this test's files in the worker's media folder."""
    server, worker, media = _fault_stack
    server.resume()
    assert worker.proc.poll() is None, worker.log.read_text(errors="replace")[-3000:]
    settings.MEDIA_ROOT = media
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": media}}
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    previous = celery_app.conf.broker_url
    use_broker(server.url)
    yield server, worker
    use_broker(previous)
