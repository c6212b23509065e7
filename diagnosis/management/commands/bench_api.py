"""Benchmark: images per second through the REST API, bulk (chunks) against one request per image.

Starts its own service on embedded defaults in a temporary folder (the launcher of `make run`), so both
figures come from the same run on the same machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnosis.client import Client, find_images
from xrayweb.launch import free_port


class Command(BaseCommand):
    help = __doc__ or ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", type=Path, default=settings.BASE_DIR.parent / "shared/data/chest_xray/train")
        parser.add_argument("--n", type=int, default=500)
        parser.add_argument("--chunk", type=int, default=50)

    def handle(self, *args: Any, data: Path, n: int, chunk: int, **options: Any) -> None:
        paths = find_images(data)[:: max(1, len(find_images(data)) // n)][:n] if data.exists() else []
        if len(paths) < n:
            raise CommandError(f"need {n} images under {data}, found {len(paths)}")
        with tempfile.TemporaryDirectory() as tmp:
            server, token, proc = self._start(Path(tmp))
            try:
                client = Client(server, token)
                bulk = self._run(client, paths, chunk)
                single = self._run(client, paths, 1)
            finally:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(60)
        self.stdout.write(f"images: {n} from {data}")
        self.stdout.write(f"bulk, {chunk} images per request:  {n / bulk:7.1f} images/s  ({bulk:.1f} s until all done)")
        self.stdout.write(
            f"one request per image (baseline): {n / single:7.1f} images/s  ({single:.1f} s until all done)"
        )
        self.stdout.write(f"bulk / baseline: {single / bulk:.2f}x")

    def _run(self, client: Client, paths: list[Path], chunk: int) -> float:
        start = time.perf_counter()
        submitted = client.submit_all(paths, chunk)
        client.wait(submitted.batches, poll=0.5)
        elapsed = time.perf_counter() - start
        if submitted.errors:
            raise CommandError(f"{len(submitted.errors)} images were refused: {submitted.errors[:3]}")
        return elapsed

    def _start(self, data_dir: Path) -> tuple[str, str, subprocess.Popen[bytes]]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MEDIA_ROOT")}
        env.update(
            XRAY_DATA_DIR=str(data_dir),
            PORT=str(port),
            API_THROTTLE_RATE="100000/min",
            API_SUBMIT_THROTTLE_RATE="100000/min",
        )
        env.pop("DJANGO_SECRET_KEY", None)
        log = data_dir / "service.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "xrayweb.launch"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not re.search(r"Log in as", log.read_text(errors="replace")):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise CommandError(f"the service did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        env["DJANGO_SECRET_KEY"] = (data_dir / "secret_key").read_text()
        out = subprocess.run(
            [sys.executable, "manage.py", "drf_create_token", "north-clinician"],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        token = re.search(r"([0-9a-f]{40})", out)
        if not token:
            raise CommandError(f"no token in: {out}")
        while not re.search(r"model \S+ loaded", log.read_text(errors="replace")):
            time.sleep(0.3)  # let the worker load its model so the figure is steady-state throughput
        return f"http://127.0.0.1:{port}", token.group(1), proc
