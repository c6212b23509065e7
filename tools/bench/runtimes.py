"""make bench's two runtimes (INFERENCE_RUNTIME: litert, the default, and tensorflow), measured in the same run:
the ML package's model + Grad-CAM in a child process each, and figures of a service on each (tools.bench.services).

    python -m tools.bench.services --runtimes   # only this comparison (a few minutes)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.bench.api import BenchError
from xrayweb.paths import BASE_DIR

RUNTIMES = ("litert", "tensorflow")  # worker.ml.engines.RUNTIMES, the default first
# The ML package alone, in a child of its own (one runtime's framework per process): model + Grad-CAM images/s and
# core-ms an image (process CPU time: every thread of the framework counted), then predict_batch images/s.
ML_CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
from worker.ml import preprocessing
from worker.ml.inference import Predictor
from worker.ml.spec import ModelSpec
paths, batch, runtime = [Path(p) for p in json.loads(sys.argv[1])], int(sys.argv[2]), sys.argv[3]
p = Predictor(ModelSpec.load(), runtime=runtime)
datas = [x.read_bytes() for x in paths]
images = np.stack([preprocessing.model_input(preprocessing.decode(d).gray, p.spec.input_size) for d in datas])
p.gradcam.batch(images[:batch]); p.predict_batch(datas[:batch])
t, cpu = time.perf_counter(), time.process_time()
for i in range(0, len(images), batch):
    p.gradcam.batch(images[i:i + batch])
model = len(images) / (time.perf_counter() - t)
model_cpu_ms = (time.process_time() - cpu) * 1000 / len(images)
t = time.perf_counter()
for i in range(0, len(datas), batch):
    p.predict_batch(datas[i:i + batch])
pipeline = len(datas) / (time.perf_counter() - t)
print(json.dumps({"model": model, "model_cpu_ms": model_cpu_ms, "pipeline": pipeline, "runtime": p.runtime}))
"""


def ml_throughput(paths: list[Path], batch: int, runtime: str = RUNTIMES[0]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", ML_CHILD, json.dumps([str(p) for p in paths]), str(batch), runtime],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if out.returncode:
        raise BenchError(f"the ML benchmark ({runtime}) failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the highest model rate: this machine's speed drifts within a run, and a slow moment flatters."""
    return max(runs, key=lambda r: r["model"])


def report(ml: dict[str, list[dict[str, Any]]], services: dict[str, dict[str, Any]], pct: Any) -> None:
    """ml: each runtime's ML runs (before and after the services); services: each runtime's batched service
    figures (bulk, idle latencies, rss, first). One table, both runtimes side by side, and their ratio."""
    a, b = RUNTIMES
    best = {rt: fastest(ml[rt]) for rt in RUNTIMES}

    def row(name: str, x: float, y: float, fmt: str = ".1f") -> None:
        print(f"{name:44}{x:10{fmt}}{y:12{fmt}}{x / y if y else float('nan'):8.2f}x")

    print(f"\n== runtimes, the same run: {a} (INFERENCE_RUNTIME's default) vs {b} ==")
    print(f"{'':44}{a:>10}{b:>12}{'ratio':>9}")
    row("model + Grad-CAM, core-ms an image", best[a]["model_cpu_ms"], best[b]["model_cpu_ms"])
    row("model + Grad-CAM, images/s (batch, 2 cores)", best[a]["model"], best[b]["model"])
    row("ML package predict_batch, images/s", best[a]["pipeline"], best[b]["pipeline"])
    row("bulk API (chunks of 50), studies/s", services[a]["bulk"], services[b]["bulk"])
    for q in (50, 95):
        idle = {rt: [x * 1000 for x in services[rt]["idle"]] for rt in RUNTIMES}
        row(f"single study, idle, p{q} ms", pct(idle[a], q), pct(idle[b], q), ".0f")
    row("inference worker RSS after ~500 studies, MB", services[a]["rss"][0][1], services[b]["rss"][0][1], ".0f")
    row("launcher's banner to the first result, s", services[a]["first"], services[b]["first"], ".2f")
    share = best[a]["model_cpu_ms"] / best[b]["model_cpu_ms"]
    print(f"model + Grad-CAM on {a}: {share:.0%} of {b}'s CPU an image (target: a third or less); "
          f"bulk on {a}: {services[a]['bulk']:.1f} studies/s (moonshot: 100 on 2 cores)")  # fmt: skip
