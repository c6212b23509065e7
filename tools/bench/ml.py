"""Inference latency on this machine: the shipped path against baselines measured in the same run.

    python -m tools.bench.ml [--n 50]
    python -m tools.bench.ml --batch-path 2000 [--batch 256] [--folder DIR]

Prints ms per image for a plain forward pass, Grad-CAM in eager mode (the straightforward way; TensorFlow
backend only), the compiled batched Grad-CAM at batch 64, and the shipped Predictor (decode, polarity, compiled
Grad-CAM, gate, calibration, heatmap and overlay) on a real radiograph upscaled to 1024x1024 (so that nothing is
gated away before the rendering is timed).

--batch-path N runs the ML package's batch path on N real radiographs in batches of --batch, and prints images/s
with where the time goes: first from the originals (Predictor.predict_batch: decode, model, drawing), then from
their working copies, as the worker runs it (worker.ml.working: the web server decoded each upload once already),
each serially and pipelined. --side S first enlarges every radiograph to S pixels on its longest side (a JPEG, as
a clinic's radiographs of 2,000-3,000 pixels are; the training images are 224). --processes P runs the worker's
path in P processes at once, as a worker with CELERY_WORKER_CONCURRENCY=P does (each its own Predictor, all
sharing the machine's one GPU), and prints their images/s together. --soak S then runs the worker's path over and
over for S seconds, for a profiler to attach to (tools/device_bench.sh). All run under whichever KERAS_BACKEND is set
(tensorflow or jax, CPU or GPU), or on LiteRT with --runtime litert (the CPU worker's default: the same paths, the
model on its engine); nothing here needs Django.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from worker.ml import preprocessing, working
from worker.ml.engines import RUNTIMES
from worker.ml.inference import Predictor
from worker.ml.prediction import Prediction, Prepared
from worker.ml.spec import ModelSpec

if TYPE_CHECKING:
    import keras

DEFAULT_IMAGE = Path("../shared/data/chest_xray/val/PNEUMONIA/person1946_bacteria_4874.jpeg")
DEFAULT_FOLDER = Path("../shared/data/chest_xray/train")


def per_call_ms(fn: Callable[[], object], n: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) * 1000 / n


def eager_gradcam(predictor: Predictor, analysis: keras.Model, x: np.ndarray) -> object:
    import tensorflow as tf  # the TensorFlow backend's baseline

    n = len(predictor.spec.conv_layers)
    with tf.GradientTape() as tape:
        outs = analysis(x, training=False)
        target = outs[-1][:, 0]
    return tape.gradient(target, outs[:n])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="a chest radiograph (JPEG or PNG)")
    p.add_argument("--batch-path", type=int, metavar="N", help="time predict_batch on N radiographs of --folder")
    p.add_argument("--batch", type=int, default=256, help="images per predict_batch call (with --batch-path)")
    p.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="radiographs for --batch-path")
    p.add_argument("--threads", type=int, default=1, help="threads that decode and render (INFERENCE_THREADS)")
    p.add_argument("--processes", type=int, default=1, help="processes running --batch-path at once")
    p.add_argument("--side", type=int, default=0, help="enlarge the radiographs to this longest side first")
    p.add_argument("--soak", type=float, default=0.0, help="then run the worker's path for this many seconds")
    p.add_argument("--runtime", choices=RUNTIMES, default="tensorflow", help="the engine (INFERENCE_RUNTIME)")
    args = p.parse_args(argv)
    print(f"{_engine(args.runtime)}, {args.threads} decode/render threads")
    if args.batch_path and args.processes > 1:
        parallel(args.processes, (args.folder, args.batch_path, args.batch, args.threads, args.side, args.runtime))
        return
    began = time.perf_counter()
    batch = max(args.batch, 64) if args.batch_path else 64
    predictor = Predictor(ModelSpec.load(), batch, args.threads, runtime=args.runtime)
    print(f"model loaded and compiled in {time.perf_counter() - began:.0f} s", flush=True)
    if args.batch_path:
        batch_path(predictor, _radiographs(args.folder, args.batch_path, args.side), args.batch, args.soak)
    else:
        latency(predictor, args.image, args.n)


def latency(predictor: Predictor, image: Path, n: int) -> None:
    small = preprocessing.decode(image.read_bytes()).gray
    gray = cv2.resize(small, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    _, png = cv2.imencode(".png", gray)
    data = bytes(png.tobytes())
    x = preprocessing.model_input(gray)[None, :, :, None].astype(np.float32)
    batch64 = np.repeat(preprocessing.model_input(gray)[None], 64, axis=0)
    import keras

    rows = {}
    analysis = getattr(predictor.gradcam, "analysis", None)  # the Keras engine's model; LiteRT has one graph
    if analysis is not None:
        rows["forward pass only (baseline)"] = per_call_ms(lambda: analysis(x, training=False), n)
    if analysis is not None and keras.backend.backend() == "tensorflow":
        rows["Grad-CAM, eager (baseline)"] = per_call_ms(lambda: eager_gradcam(predictor, analysis, x), n)
    rows["Grad-CAM, compiled, batch of 64"] = (
        per_call_ms(lambda: predictor.gradcam.batch(batch64), max(1, n // 10)) / 64
    )
    rows["shipped Predictor.predict, 1024x1024 PNG in"] = per_call_ms(lambda: _predict_or_reject(predictor, data), n)
    rows["shipped Predictor.predict_batch of 32 PNGs"] = (
        per_call_ms(lambda: predictor.predict_batch([data] * 32), max(1, n // 10)) / 32
    )
    for name, ms in rows.items():
        print(f"{name:<46} {ms:8.1f} ms/image")


def batch_path(predictor: Predictor, datas: list[bytes], batch: int, soak: float = 0.0) -> None:
    """The batch path from the originals, then from their working copies (the worker's), each serially with where
    the time goes and then pipelined; then, for `soak` seconds, the worker's path over and over (for a profiler)."""
    sizes = sorted(preprocessing.decode(d).gray.shape for d in datas[:: max(1, len(datas) // 20)])
    print(f"{len(datas)} radiographs, about {sizes[len(sizes) // 2][1]}x{sizes[len(sizes) // 2][0]} pixels")
    batches = [datas[i : i + batch] for i in range(0, len(datas), batch)]
    prepare_originals = predictor.prepare_batch
    serial(predictor, batches, prepare_originals, "predict_batch", "decode, input, display")
    pipelined(predictor, batches, prepare_originals, "from the originals")
    start = time.perf_counter()
    copies = _copies(predictor, batches)
    made_ms = (time.perf_counter() - start) * 1000 / len(datas)
    print(f"working copies: decoding and making them (the web server's work at upload) {made_ms:.2f} ms/image")
    serial(predictor, copies, _from_copies(predictor), "from working copies", "reading the copies")
    pipelined(predictor, copies, _from_copies(predictor), "from working copies")
    if soak > 0:
        print(f"soak: the worker's path (pipelined, from working copies) over and over for {soak:.0f} s", flush=True)
        start, rounds = time.perf_counter(), 0
        while time.perf_counter() - start < soak:
            pipelined(predictor, copies, _from_copies(predictor), "from working copies", quiet=True)
            rounds += 1
        print(f"soak: {rounds * len(datas) / (time.perf_counter() - start):.1f} images/s", flush=True)


Prepare = Callable[[list[Any]], Sequence[Prepared | Exception]]


def _copies(predictor: Predictor, batches: list[list[bytes]]) -> list[list[working.WorkingCopy]]:
    """Each radiograph's working copy, made as the web server makes it at upload."""
    return [[working.make(preprocessing.decode(d), predictor.spec.input_size) for d in chunk] for chunk in batches]


def _from_copies(predictor: Predictor) -> Prepare:
    def prepare(copies: list[working.WorkingCopy]) -> list[Prepared | Exception]:
        return [p if p is not None else RuntimeError("copy unusable") for p in predictor.prepare_copies(copies)]

    return prepare


def serial(predictor: Predictor, batches: list[list[Any]], prepare: Prepare, title: str, source: str) -> None:
    """Each batch through preparing, judging (the compiled forward + Grad-CAM, polarity, gate, calibration) and
    drawing, one after the other: the total is the serial path as it runs, each stage timed on its own. The model
    and the polarity + gate are then timed again apart, on the same batch, outside the total, to show their share
    of judging."""
    for warm in {len(batches[0]): batches[0], len(batches[-1]): batches[-1]}.values():
        predictor.draw(predictor.judge_prepared(prepare(warm)))  # compiles every shape the run uses
    names = (f"preparing ({source})", "judging (model, polarity, gate)", "drawing (heatmap PNG, overlay JPEG)")
    stages = dict.fromkeys(names, 0.0)
    model = gating = 0.0
    judged = 0
    for chunk in batches:
        marks = [time.perf_counter()]
        prepared = [p for p in prepare(chunk) if isinstance(p, Prepared)]
        marks.append(time.perf_counter())
        outcomes = predictor.judge_prepared(prepared)
        marks.append(time.perf_counter())
        drawn = predictor.draw(outcomes)
        marks.append(time.perf_counter())
        judged += sum(isinstance(o, Prediction) for o in drawn)
        for k, name in enumerate(names):
            stages[name] += marks[k + 1] - marks[k]
        model_s, gating_s = _model_and_gate(predictor, prepared)
        model, gating = model + model_s, gating + gating_s
    total = sum(stages.values())
    n = sum(len(b) for b in batches)
    print(f"{title}: {n} radiographs in batches of {len(batches[0])}, {judged} judged: {n / total:.1f} images/s")
    for name, seconds in stages.items():
        print(f"  {name:<36} {seconds * 1000 / n:7.2f} ms/image {100 * seconds / total:5.1f} %")
    print(
        f"    of judging, timed apart: forward + Grad-CAM {model * 1000 / n:.2f}, polarity + gate "
        f"{gating * 1000 / n:.2f} ms/image"
    )
    print(f"  the model alone: {n / model:.1f} images/s")


def _model_and_gate(predictor: Predictor, prepared: list[Prepared]) -> tuple[float, float]:
    """Seconds for the compiled forward + Grad-CAM of these images, and for their polarity and gate."""
    images = np.stack([p.model_input for p in prepared])
    start = time.perf_counter()
    _, _, features = predictor.gradcam.batch(images)
    middle = time.perf_counter()
    if predictor.polarity is not None:
        predictor.polarity.reasons(images)
    if predictor.gate is not None:
        predictor.gate.reasons(features, np.array([p.chroma for p in prepared]))
    return middle - start, time.perf_counter() - middle


def pipelined(predictor: Predictor, batches: list[list[Any]], prepare: Prepare, title: str, quiet: bool = False) -> int:
    """The worker's loop without the database and files (diagnosis.pipeline): while the model judges
    batch k, one helper thread draws batch k-1 and then prepares batch k+1. Prints images/s and returns how many
    were judged."""
    start = time.perf_counter()
    judged = 0
    with ThreadPoolExecutor(1, thread_name_prefix="bench-helper") as helper:
        preparing = helper.submit(prepare, batches[0])
        drawing: Future[list[Prediction | Exception]] | None = None
        for k in range(len(batches)):
            prepared = list(preparing.result())
            if k + 1 < len(batches):
                preparing = helper.submit(prepare, batches[k + 1])
            outcomes = predictor.judge_prepared(prepared)
            if drawing is not None:
                judged += sum(isinstance(o, Prediction) for o in drawing.result())
            drawing = helper.submit(predictor.draw, outcomes)
        if drawing is not None:
            judged += sum(isinstance(o, Prediction) for o in drawing.result())
    n = sum(len(b) for b in batches)
    rate = n / (time.perf_counter() - start)
    if not quiet:
        print(f"pipelined as the worker runs it, {title}, {judged} judged: {rate:.1f} images/s")
    return judged


Job = tuple[Path, int, int, int, int, str]  # folder, images, batch, threads, side, runtime


def parallel(processes: int, job: Job) -> None:
    """Each process loads its own Predictor and runs the worker's path (from working copies, made before the clock
    starts) over all the images once; the clock runs from when every one of them is warmed up until the last one is
    done. A process that dies ends the run at once."""
    ctx = multiprocessing.get_context("spawn")  # a forked child would share the parent's framework state
    go = ctx.Event()
    results: multiprocessing.Queue[int] = ctx.Queue()
    children = [ctx.Process(target=_child, args=(job, go, results), daemon=True) for _ in range(processes)]
    began = time.perf_counter()
    for child in children:
        child.start()
    _collect(results, children, processes)  # each child's "warmed up" (-1)
    print(f"{processes} processes loaded and compiled in {time.perf_counter() - began:.0f} s", flush=True)
    go.set()
    start = time.perf_counter()
    judged: int = sum(_collect(results, children, processes), 0)
    seconds = time.perf_counter() - start
    n = job[1] * processes
    print(
        f"{processes} processes x {job[3]} threads, batches of {job[2]}: {n} radiographs, {judged} judged: "
        f"{n / seconds:.1f} images/s from working copies",
        flush=True,
    )


def _collect(results: multiprocessing.Queue[int], children: Sequence[BaseProcess], n: int) -> list[int]:
    got: list[int] = []
    while len(got) < n:
        try:
            got.append(results.get(timeout=1))
        except queue.Empty:
            dead = [c.exitcode for c in children if c.exitcode not in (None, 0)]
            if dead:
                raise SystemExit(f"a benchmark process died (exit code {dead[0]}); its error is above") from None
    return got


def _child(job: Job, go: Event, results: multiprocessing.Queue[int]) -> None:
    folder, n, batch, threads, side, runtime = job
    datas = _radiographs(folder, n, side)  # first: a folder short of images ends the process before the model loads
    predictor = Predictor(ModelSpec.load(), max(batch, 64), threads, runtime=runtime)
    copies = _copies(predictor, [datas[i : i + batch] for i in range(0, n, batch)])
    prepare = _from_copies(predictor)
    predictor.draw(predictor.judge_prepared(prepare(copies[-1])))
    results.put(-1)
    go.wait()
    drawn = [predictor.draw(predictor.judge_prepared(prepare(chunk))) for chunk in copies]
    results.put(sum(isinstance(o, Prediction) for outcomes in drawn for o in outcomes))


def _radiographs(folder: Path, n: int, side: int = 0) -> list[bytes]:
    """n JPEGs spread evenly over the folder's sorted list (both classes of the Kermany training split); with side,
    each enlarged to that longest side (bicubic) and saved again as a JPEG at quality 95."""
    files = sorted(folder.rglob("*.jpeg"))
    if len(files) < n:
        raise SystemExit(f"{folder} has {len(files)} JPEGs, fewer than the {n} asked for")
    datas = [files[i * len(files) // n].read_bytes() for i in range(n)]
    return [_enlarged(d, side) for d in datas] if side else datas


def _enlarged(data: bytes, side: int) -> bytes:
    gray = preprocessing.decode(data).gray
    h, w = gray.shape
    big = cv2.resize(gray, (round(w * side / max(h, w)), round(h * side / max(h, w))), interpolation=cv2.INTER_CUBIC)
    return bytes(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())


def _engine(runtime: str) -> str:
    """The engine and the device it runs on. Keras is imported here, not at the top, and not for LiteRT (which runs
    on the CPU and, as in the CPU worker, loads neither Keras nor TensorFlow): a --processes child (spawned) imports
    this module, and loads its framework only with its model, after its radiographs are read."""
    if runtime == "litert":
        return "LiteRT, CPU"
    import keras

    return f"Keras {keras.__version__} on {keras.backend.backend()}, {_device()}"


def _device() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return ", ".join(sorted({d.device_kind for d in jax.devices()}))
    import tensorflow as tf  # already loaded by the TensorFlow backend

    return ", ".join(sorted({d.device_type for d in tf.config.list_physical_devices()}))


def _predict_or_reject(predictor: Predictor, data: bytes) -> object:
    try:
        return predictor.predict(data)
    except preprocessing.ImageRejected as exc:
        raise SystemExit(f"the benchmark image was rejected ({exc}); pass --image with a chest radiograph") from exc


if __name__ == "__main__":
    main()
