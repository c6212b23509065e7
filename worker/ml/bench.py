"""Inference latency on this machine: the shipped path against baselines measured in the same run.

    python -m worker.ml.bench [--n 50]

Prints ms per image for a plain forward pass, Grad-CAM in eager mode (the straightforward way), and the
shipped Predictor (decode, CLAHE, compiled Grad-CAM, gate, heatmap and overlay PNGs).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import tensorflow as tf

from worker.ml import preprocessing
from worker.ml.inference import Predictor
from worker.ml.spec import ModelSpec


def per_call_ms(fn: Callable[[], object], n: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) * 1000 / n


def eager_gradcam(predictor: Predictor, x: tf.Tensor) -> object:
    with tf.GradientTape() as tape:
        conv, _, logit = predictor.analysis(x, training=False)
    return tape.gradient(logit[:, 0], conv)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50)
    args = p.parse_args(argv)
    predictor = Predictor(ModelSpec.load())
    gray = np.clip(np.random.default_rng(0).normal(120, 50, (1024, 1024)), 0, 255).astype(np.uint8)
    _, png = cv2.imencode(".png", gray)
    data = bytes(png.tobytes())
    x = tf.convert_to_tensor(preprocessing.model_input(gray)[None, :, :, None], dtype=tf.float32)
    model_only = predictor.analysis
    rows = {
        "forward pass only (baseline)": per_call_ms(lambda: model_only(x, training=False), args.n),
        "Grad-CAM, eager (baseline)": per_call_ms(lambda: eager_gradcam(predictor, x), args.n),
        "shipped Predictor.predict, 1024x1024 PNG in": per_call_ms(lambda: _predict_or_reject(predictor, data), args.n),
    }
    for name, ms in rows.items():
        print(f"{name:<46} {ms:8.1f} ms/image")


def _predict_or_reject(predictor: Predictor, data: bytes) -> object:
    try:
        return predictor.predict(data)
    except preprocessing.ImageRejected as exc:  # noise is gated, after all the work is done
        return exc


if __name__ == "__main__":
    main()
