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


class GradCam:
    """Grad-CAM for one model, compiled once (a traced tf.function: about 10x faster than eager on a CPU)."""

    def __init__(self, analysis: keras.Model) -> None:
        self.analysis = analysis
        size = analysis.inputs[0].shape[1:3]
        spec = tf.TensorSpec([1, size[0], size[1], 1], tf.float32)
        self._run = tf.function(self._forward_backward, input_signature=[spec], reduce_retracing=True)

    def _forward_backward(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            conv, feats, logit = self.analysis(x, training=False)
            target = logit[:, 0]
        return conv, tape.gradient(target, conv), feats, target

    def __call__(self, image: np.ndarray) -> CamResult:
        """image: (H, W) uint8 model input. Gradients of the logit (not the sigmoid) w.r.t. the conv map."""
        x = tf.convert_to_tensor(image[None, :, :, None], dtype=tf.float32)
        conv, grads, feats, target = self._run(x)
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
