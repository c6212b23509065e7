"""Inference latency on this machine: the shipped path against baselines measured in the same run.

    python -m worker.ml.bench [--n 50]

Prints ms per image for a plain forward pass, Grad-CAM in eager mode (the straightforward way), the
compiled batched Grad-CAM at batch 64, and the shipped Predictor (decode, polarity, compiled Grad-CAM, gate,
calibration, heatmap and overlay PNGs) on a real radiograph upscaled to 1024x1024 (so that nothing is gated
away before the rendering is timed).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from worker.ml import preprocessing
from worker.ml.inference import Predictor
from worker.ml.spec import ModelSpec

DEFAULT_IMAGE = Path("../shared/data/chest_xray/val/PNEUMONIA/person1946_bacteria_4874.jpeg")


def per_call_ms(fn: Callable[[], object], n: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) * 1000 / n


def eager_gradcam(predictor: Predictor, x: tf.Tensor) -> object:
    n = len(predictor.spec.conv_layers)
    with tf.GradientTape() as tape:
        outs = predictor.analysis(x, training=False)
        target = outs[-1][:, 0]
    return tape.gradient(target, outs[:n])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="a chest radiograph (JPEG or PNG)")
    args = p.parse_args(argv)
    predictor = Predictor(ModelSpec.load())
    small = preprocessing.decode(args.image.read_bytes()).gray
    gray = cv2.resize(small, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    _, png = cv2.imencode(".png", gray)
    data = bytes(png.tobytes())
    x = tf.convert_to_tensor(preprocessing.model_input(gray)[None, :, :, None], dtype=tf.float32)
    model_only = predictor.analysis
    batch64 = np.repeat(preprocessing.model_input(gray)[None], 64, axis=0)
    rows = {
        "forward pass only (baseline)": per_call_ms(lambda: model_only(x, training=False), args.n),
        "Grad-CAM, eager (baseline)": per_call_ms(lambda: eager_gradcam(predictor, x), args.n),
        "Grad-CAM, compiled, batch of 64": per_call_ms(lambda: predictor.gradcam.batch(batch64), max(1, args.n // 10))
        / 64,
        "shipped Predictor.predict, 1024x1024 PNG in": per_call_ms(lambda: _predict_or_reject(predictor, data), args.n),
        "shipped Predictor.predict_batch of 32 PNGs": per_call_ms(
            lambda: predictor.predict_batch([data] * 32), max(1, args.n // 10)
        )
        / 32,
    }
    for name, ms in rows.items():
        print(f"{name:<46} {ms:8.1f} ms/image")


def _predict_or_reject(predictor: Predictor, data: bytes) -> object:
    try:
        return predictor.predict(data)
    except preprocessing.ImageRejected as exc:
        raise SystemExit(f"the benchmark image was rejected ({exc}); pass --image with a chest radiograph") from exc


if __name__ == "__main__":
    main()
