"""The shape of one prediction: what the ML package returns and what the app stores (no TensorFlow, no Django)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from worker.ml.working import Preview


@dataclass(frozen=True)
class Prediction:
    """One image's result. probability is the calibrated P(pneumonia) in [0, 1] at the operating point it was
    judged with; label is the spec's label at `threshold`; logit is the model's raw output (a site's calibration
    is fitted on it); heatmap_png is PNG bytes and overlay_jpeg JPEG bytes (worker.ml.overlay); inference_ms is the
    wall time of predict(); runtime is the engine that ran the model (worker.ml.engines: "litert", "tensorflow" or
    "jax")."""

    label: str
    probability: float
    threshold: float
    model_version: str
    heatmap_png: bytes
    overlay_jpeg: bytes
    inference_ms: int
    logit: float
    runtime: str = ""


@dataclass(frozen=True)
class Judged:
    """An image the model judged at an operating point (its call, probability and threshold), whose heatmap and
    overlay are not drawn yet (Predictor.draw): judging and drawing are apart so that a worker can draw one batch
    while the model judges the next. cam: the map drawn, in [0, 1] on the card's absolute scale
    (all zero for a NORMAL call); display: the radiograph at display size (preprocessing.display_image), or a
    working copy's preview, decoded only if there is a map to draw on it."""

    label: str
    probability: float
    cam: np.ndarray
    display: np.ndarray | Preview
    judge_ms: float
    logit: float
    threshold: float


@dataclass(frozen=True)
class Prepared:
    """An image decoded and made ready for the model (Predictor.prepare_batch): its model input, the radiograph at
    display size, its colour (mean saturation, for the gate) and the milliseconds that took. The full decode is
    not kept: a worker holds the next batch prepared while it judges this one."""

    model_input: np.ndarray
    display: np.ndarray | Preview
    chroma: float
    prepare_ms: float
