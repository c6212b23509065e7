"""The shape of one prediction: what the ML package returns and what the app stores (no TensorFlow, no Django)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prediction:
    """One image's result. probability is the calibrated P(pneumonia) in [0, 1]; label is the spec's label at
    `threshold`; heatmap_png is PNG bytes and overlay_jpeg JPEG bytes (worker.ml.overlay); inference_ms is the wall
    time of predict()."""

    label: str
    probability: float
    threshold: float
    model_version: str
    heatmap_png: bytes
    overlay_jpeg: bytes
    inference_ms: int
