"""Grad-CAM (Selvaraju et al. 2017) on the logit, over the last convolutional block of every ensemble member.

The analysis model is built once per loaded model and returns, in one pass, each member's conv feature
map, the pooled features (for the out-of-distribution gate) and the logit. The map is *not* normalised
per image: `cam_from` returns raw evidence, and the caller divides by the model card's `cam_scale`, one
constant for every study, so that a faint map means faint evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class CamResult:
    """logit: the raw model output; cam: (h, w) float32 >= 0, raw evidence for the positive class;
    features: (d,) float32, the members' pooled features side by side."""

    logit: float
    cam: np.ndarray
    features: np.ndarray


def analysis_model(model: keras.Model, conv_layers: Sequence[str], feature_layers: Sequence[str]) -> keras.Model:
    """Outputs [conv maps (1, h, w, c) each, pooled features (1, d) each, logit (1, 1)] for one forward pass."""
    convs = [model.get_layer(name).output for name in conv_layers]
    feats = [model.get_layer(name).output for name in feature_layers]
    return keras.Model(model.inputs, [*convs, *feats, model.output])


class GradCam:
    """Grad-CAM for one model, compiled once for any batch size (a traced tf.function: about 10x faster than
    eager on a CPU). Inference-mode layers keep samples independent, so the gradient of the summed logits
    gives each sample its own gradients."""

    def __init__(self, analysis: keras.Model, n_conv: int) -> None:
        self.analysis = analysis
        self.n_conv = n_conv
        size = analysis.inputs[0].shape[1:3]
        spec = tf.TensorSpec([None, size[0], size[1], 1], tf.float32)
        self._run = tf.function(self._forward_backward, input_signature=[spec], reduce_retracing=True)

    def _forward_backward(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            outs = self.analysis(x, training=False)
            convs, feats, logit = outs[: self.n_conv], outs[self.n_conv : -1], outs[-1]
            target = logit[:, 0]
            total = tf.reduce_sum(target)
        grads = tape.gradient(total, convs)
        weighted = [c * tf.reduce_mean(g, axis=[1, 2], keepdims=True) for c, g in zip(convs, grads, strict=True)]
        cam = tf.add_n([tf.reduce_sum(w, axis=-1) for w in weighted])
        return tf.nn.relu(cam), tf.concat(feats, axis=-1), target

    def batch(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """images: (n, H, W) uint8 -> logits (n,), cams (n, h, w) float32 >= 0 (raw), features (n, d)."""
        logits, cams, feats = [], [], []
        for i in range(0, len(images), chunk):
            x = tf.convert_to_tensor(images[i : i + chunk, :, :, None], dtype=tf.float32)
            cam, feat, target = self._run(x)
            logits.append(target.numpy())
            cams.append(cam.numpy())
            feats.append(feat.numpy())
        cam_all = np.concatenate(cams).astype(np.float32)
        cam_all[~np.isfinite(cam_all)] = 0.0
        return np.concatenate(logits).astype(np.float64), cam_all, np.concatenate(feats).astype(np.float32)

    def __call__(self, image: np.ndarray) -> CamResult:
        """image: (H, W) uint8 model input. Gradients of the logit (not the sigmoid) w.r.t. the conv maps."""
        logits, cams, feats = self.batch(image[None])
        return CamResult(logit=float(logits[0]), cam=cams[0], features=feats[0])


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
