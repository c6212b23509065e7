"""tools.bench.ml's batch path in several processes (the GPU worker's CELERY_WORKER_CONCURRENCY, measured)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import images

ROOT = Path(__file__).resolve().parents[2]


def _bench(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tools.bench.ml", "--folder", str(folder), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _folder(tmp_path: Path, n: int) -> Path:
    for i in range(n):
        (tmp_path / f"chest-{i}.jpeg").write_bytes(images.encode(images.chest_like(seed=i), "JPEG", quality=90))
    return tmp_path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One process's run of the batch path, its radiographs enlarged first (each run loads the model: one run
    serves both tests that read it). The folder, and what the run printed."""
    folder = _folder(tmp_path_factory.mktemp("bench"), 6)
    run = _bench(folder, "--batch-path", "6", "--batch", "4", "--soak", "0.5", "--side", "1200")
    assert run.returncode == 0, run.stderr[-2000:]
    return folder, run.stdout


def test_processes_run_the_batch_path_together_and_count_every_image(one_process: tuple[Path, str]) -> None:
    folder, out = one_process
    assert re.search(r"^soak: the worker's path .*\n(.*\n)*soak: [\d.]+ images/s$", out, re.M), out
    alone = re.search(r"predict_batch: 6 radiographs in batches of 4, (\d+) judged", out)
    assert alone, out
    for source in ("from the originals", "from working copies"):  # the same images judged every way
        overlapped = re.search(rf"pipelined as the worker runs it, {source}, (\d+) judged: [\d.]+ images/s", out)
        assert overlapped and overlapped.group(1) == alone.group(1), out
    copies = re.search(r"from working copies: 6 radiographs in batches of 4, (\d+) judged", out)
    assert copies and copies.group(1) == alone.group(1), out
    # The processes run the CPU worker's engine (LiteRT): the same batch path, the model loaded in each without
    # TensorFlow (on TensorFlow the three loads took 24 s of CPU; here 3 s).
    runtime = ("--runtime", "litert")
    two = _bench(
        folder, "--batch-path", "6", "--batch", "4", "--processes", "2", "--threads", "2", "--side", "1200", *runtime
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.startswith("LiteRT, CPU, 2 decode/render threads"), two.stdout
    line = r"2 processes x 2 threads, batches of 4: 12 radiographs, (\d+) judged: ([\d.]+) images/s from working"
    together = re.search(line, two.stdout)
    assert together, two.stdout
    assert int(together.group(1)) == 2 * int(alone.group(1))  # each process judged all six, as one process does
    assert float(together.group(2)) > 0


def test_side_enlarges_the_radiographs_first(one_process: tuple[Path, str]) -> None:
    assert "6 radiographs, about 1200x960 pixels" in one_process[1]  # chest_like is 320x256


def test_a_process_that_dies_ends_the_run_with_its_reason(tmp_path: Path) -> None:
    out = _bench(_folder(tmp_path, 2), "--batch-path", "5", "--processes", "2")
    assert out.returncode != 0
    assert "has 2 JPEGs, fewer than the 5 asked for" in out.stderr
    assert "a benchmark process died" in out.stderr
