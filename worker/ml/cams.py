"""Grad-CAM's arithmetic on arrays (numpy only, no framework): the map from conv maps and their gradients, and the
card's absolute scale it is drawn on. worker.ml.gradcam (Keras) and worker.ml.litert (LiteRT) compute the maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CamResult:
    """One image through an engine: logit, the raw model output; cam: (h, w) float32 >= 0, raw evidence for the
    positive class; features: (d,) float32, the members' pooled features side by side."""

    logit: float
    cam: np.ndarray
    features: np.ndarray


def cam_from(convs: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> np.ndarray:
    """convs, grads: one (h, w, c) pair per member. Channel weights are the spatial mean of the gradients.

    Returns (h, w) float32 >= 0: the positive part of the summed weighted maps, i.e. Grad-CAM over the
    members' channels side by side. Negative evidence (for NORMAL) is clipped, and a zero map stays zero.
    """
    total = sum((conv * grad.mean(axis=(0, 1))).sum(axis=-1) for conv, grad in zip(convs, grads, strict=True))
    cam = np.maximum(np.asarray(total, dtype=np.float64), 0.0)
    cam[~np.isfinite(cam)] = 0.0
    return np.asarray(cam, dtype=np.float32)


def scaled(cam: np.ndarray, cam_scale: float) -> np.ndarray:
    """Raw evidence -> [0, 1] on the card's absolute scale (values above cam_scale are drawn at full strength)."""
    if cam_scale <= 0:
        raise ValueError(f"cam_scale must be positive, got {cam_scale}")
    return np.asarray(np.clip(cam / cam_scale, 0.0, 1.0), dtype=np.float32)
