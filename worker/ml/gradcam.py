"""Grad-CAM (Selvaraju et al. 2017) on the logit of the last convolutional block.

The analysis model is built once per loaded model and returns, in one pass, the last conv
feature map, the pooled features (for the out-of-distribution gate) and the logit.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from worker.ml.model import FEATURES_LAYER

EPS = 1e-8


@dataclass(frozen=True)
class CamResult:
    """logit: the raw model output; cam: (h, w) float32 in [0, 1]; features: (d,) float32."""

    logit: float
    cam: np.ndarray
    features: np.ndarray


def analysis_model(model: keras.Model, conv_layer: str) -> keras.Model:
    """Outputs [conv map (1, h, w, c), pooled features (1, d), logit (1, 1)] for one forward pass."""
    outputs = [model.get_layer(conv_layer).output, model.get_layer(FEATURES_LAYER).output, model.output]
    return keras.Model(model.inputs, outputs)


def gradcam(analysis: keras.Model, image: np.ndarray) -> CamResult:
    """image: (H, W) uint8 model input. Gradients of the logit (not the sigmoid) w.r.t. the conv map."""
    x = tf.convert_to_tensor(image[None, :, :, None], dtype=tf.float32)
    with tf.GradientTape() as tape:
        conv, feats, logit = analysis(x, training=False)
        target = logit[:, 0]
    grads = tape.gradient(target, conv)
    return CamResult(
        logit=float(target.numpy()[0]),
        cam=cam_from(conv.numpy()[0], grads.numpy()[0]),
        features=np.asarray(feats.numpy()[0], dtype=np.float32),
    )


def cam_from(conv: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """conv, grads: (h, w, c). Channel weights are the spatial mean of the gradients.

    Returns (h, w) float32 in [0, 1]; an all-zero (or all-negative) map stays zero instead of dividing by zero.
    """
    weights = grads.mean(axis=(0, 1))
    cam = np.maximum((conv * weights).sum(axis=-1), 0.0)
    peak = float(cam.max())
    if not np.isfinite(peak) or peak < EPS:
        return np.zeros(cam.shape, dtype=np.float32)
    return np.asarray(cam / peak, dtype=np.float32)
