"""Benchmark: images per second through the REST API, bulk (chunks) against one request per image.

    python -m tools.bench.api --n 500

Starts its own service on embedded defaults in a temporary folder (the launcher of `make run`), so both
figures come from the same run on the same machine. It drives the service from outside, as a clinic would:
through the launcher's ready file and the REST client, never by importing the app.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xrayclient import Client, find_images
from xrayweb import paths
from xrayweb.launch import DEMO_USER, spawn, wait_ready
from xrayweb.paths import BASE_DIR


class BenchError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.api", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=BASE_DIR.parent / "shared/data/chest_xray/train")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--chunk", type=int, default=50)
    args = p.parse_args(argv)
    try:
        bench(args.data, args.n, args.chunk)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def bench(data: Path, n: int, chunk: int) -> None:
    found = find_images(data) if data.exists() else []
    paths = found[:: max(1, len(found) // n)][:n]
    if len(paths) < n:
        raise BenchError(f"need {n} images under {data}, found {len(paths)}")
    with scratch() as tmp:
        server, token, proc = start(Path(tmp))
        try:
            client = Client(server, token)
            bulk = timed(client, paths, chunk)
            single = timed(client, paths, 1)
        finally:
            stop(proc)
    print(f"images: {n} from {data}")
    print(f"bulk, {chunk} images per request:  {n / bulk:7.1f} images/s  ({bulk:.1f} s until all done)")
    print(f"one request per image (baseline): {n / single:7.1f} images/s  ({single:.1f} s until all done)")
    print(f"bulk / baseline: {single / bulk:.2f}x")


def timed(client: Client, paths: list[Path], chunk: int) -> float:
    start_time = time.perf_counter()
    submitted = client.submit_all(paths, chunk)
    client.wait(submitted.batches, poll=0.5)
    elapsed = time.perf_counter() - start_time
    if submitted.errors:
        raise BenchError(f"{len(submitted.errors)} images were refused: {submitted.errors[:3]}")
    return elapsed


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A throw-away data folder for a benchmark's services, on the disk where `make run` keeps its data
    (XRAY_DATA_DIR, or .data in the checkout). Keep one for a whole run and delete it at the end: file creation
    is part of what is measured, and on a disk like this machine's (ext4 without a journal) creating a file near
    thousands just deleted cost up to 0.8 ms of CPU instead of 0.02 ms for a while (the kernel's
    recently_deleted scan, seen with perf), so a run that deleted one service's files slowed the next."""
    parent = paths.data_dir(os.environ)
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="bench-", dir=parent)


def file_creation_us(folder: Path, n: int = 200) -> float:
    """CPU microseconds to create (and write 4 KB to) one new file in `folder`: the disk's condition, printed
    with the figures. The files are kept until the run's folder goes."""
    probe = folder / f"probe-{time.time_ns()}"
    probe.mkdir()
    began = time.process_time()
    for i in range(n):
        (probe / f"{i}.png").write_bytes(b"\0" * 4096)
    return (time.process_time() - began) * 1e6 / n


def start(data_dir: Path, **extra: str) -> tuple[str, str, subprocess.Popen[bytes]]:
    """The service started (launch), and an API token once the worker has loaded its model."""
    server, env, log, proc = launch(data_dir, **extra)
    try:
        return server, create_token(data_dir, env, log), proc
    except BaseException:
        stop(proc)
        raise


def launch(data_dir: Path, **extra: str) -> tuple[str, dict[str, str], Path, subprocess.Popen[bytes]]:
    """make run's launcher on embedded defaults in `data_dir` (env: `extra`), returned once it has written its
    ready file and printed its banner: (server URL, its environment, its log, the launcher's process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MEDIA_ROOT", "DJANGO_SECRET_KEY")}
    env.update(
        **extra,
        PORT="0",
        API_THROTTLE_RATE="100000/min",
        API_SUBMIT_THROTTLE_RATE="100000/min",
    )
    log = data_dir / "service.log"
    proc = spawn(data_dir, log, env)
    try:
        server = wait_ready(data_dir, proc)["url"].rstrip("/")
    except RuntimeError as exc:
        stop(proc)
        raise BenchError(f"{exc}:\n{log.read_text(errors='replace')[-3000:]}") from exc
    except BaseException:  # nothing of the service outlives a failed start (one that exited left nothing)
        stop(proc)
        raise
    return server, env, log, proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the launcher and everything it started (Ctrl-C to its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    proc.wait(60)


def create_token(data_dir: Path, env: dict[str, str], log: Path) -> str:
    env["DJANGO_SECRET_KEY"] = (data_dir / "secret_key").read_text()
    env["XRAY_DATA_DIR"] = str(data_dir)
    out = subprocess.run(
        [sys.executable, "manage.py", "drf_create_token", DEMO_USER],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    token = re.search(r"([0-9a-f]{40})", out)
    if not token:
        raise BenchError(f"no token in: {out}")
    while not re.search(r"model \S+ loaded", log.read_text(errors="replace")):
        time.sleep(0.3)  # let the worker load its model so the figure is steady-state throughput
    return token.group(1)


if __name__ == "__main__":
    raise SystemExit(main())
