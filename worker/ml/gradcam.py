"""Grad-CAM (Selvaraju et al. 2017) on the logit, over the last convolutional block of every ensemble member.

The analysis model is built once per loaded model and returns, in one pass, each member's conv feature
map, the pooled features (for the out-of-distribution gate) and the logit. The map is *not* normalised
per image: `cam_from` returns raw evidence, and the caller divides by the model card's `cam_scale`, one
constant for every study, so that a faint map means faint evidence.

One pipeline runs on Keras 3's TensorFlow or JAX backend (KERAS_BACKEND): `logit_gradient` is the only
backend-specific step (GradientTape, or jax.vjp), and `_compiled` traces the pipeline once (tf.function, or
jax.jit on the model's weights). TensorFlow and JAX are imported only by the backend that uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from worker.ml.cams import CamResult
from worker.ml.cams import cam_from as cam_from  # re-exported: the arithmetic lives where no framework is imported
from worker.ml.cams import scaled as scaled

Tensors = list[Any]  # backend tensors: tf.Tensor or jax.Array
Fn = Callable[[Any], Any]


def analysis_model(model: keras.Model, conv_layers: Sequence[str], feature_layers: Sequence[str]) -> keras.Model:
    """Outputs [conv maps (1, h, w, c) each, pooled features (1, d) each, logit (1, 1)] for one forward pass."""
    convs = [model.get_layer(name).output for name in conv_layers]
    feats = [model.get_layer(name).output for name in feature_layers]
    return keras.Model(model.inputs, [*convs, *feats, model.output])


def logit_gradient(head: Fn, convs: Tensors) -> tuple[Tensors, Tensors]:
    """head: conv maps -> [features..., logit (n, 1)]. Returns head(convs) and d logit / d convs per sample
    (inference-mode layers keep samples independent, so the gradient of the summed logits is each sample's own)."""
    if keras.backend.backend() == "jax":
        import jax

        def logit_and_outs(c: Tensors) -> tuple[Any, Tensors]:
            outs = head(c)
            return outs[-1], outs

        logit, vjp, outs = jax.vjp(logit_and_outs, convs, has_aux=True)
        (grads,) = vjp(jax.numpy.ones_like(logit))
        return list(outs), list(grads)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(convs)
        outs = head(convs)
    return list(outs), tape.gradient(outs[-1], convs)


def _forward_backward(body: Fn, head: Fn, x: Any) -> tuple[Any, Any, Any]:
    """x: (n, H, W, 1) float32 grey levels -> (cams (n, h, w) >= 0, features (n, d), logits (n,))."""
    convs = keras.tree.flatten(body(x))
    outs, grads = logit_gradient(head, convs)
    weighted = [
        ops.sum(c * ops.mean(g, axis=(1, 2), keepdims=True), axis=-1) for c, g in zip(convs, grads, strict=True)
    ]
    return ops.relu(sum(weighted[1:], weighted[0])), ops.concatenate(outs[:-1], axis=-1), outs[-1][:, 0]


def _compiled(body: keras.Model, head: keras.Model) -> Fn:
    """The pipeline traced once for any batch size: a tf.function, or jax.jit over the weights (stateless)."""
    if keras.backend.backend() == "jax":
        import jax

        def stateless(model: keras.Model, weights: tuple[Tensors, Tensors]) -> Fn:
            return lambda x: model.stateless_call(*weights, x, training=False)[0]

        @jax.jit
        def run(weights: Any, x: Any) -> tuple[Any, Any, Any]:
            return _forward_backward(stateless(body, weights[0]), stateless(head, weights[1]), x)

        weights = [
            ([v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables])
            for m in (body, head)
        ]
        return lambda x: _padded(lambda p: run(weights, p), x)
    import tensorflow as tf

    spec = tf.TensorSpec([None, *body.inputs[0].shape[1:]], tf.float32)

    def forward_backward(x: tf.Tensor) -> tuple[Any, Any, Any]:
        return _forward_backward(lambda t: body(t, training=False), lambda t: head(t, training=False), x)

    return tf.function(forward_backward, input_signature=[spec], reduce_retracing=True)


def _padded(run: Fn, x: np.ndarray) -> tuple[Any, ...]:
    """jax.jit compiles once per shape: pad the batch to a power of two (a few shapes) and cut the outputs back."""
    n = len(x)
    size = 1 << max(0, n - 1).bit_length()
    outs = run(np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)]) if size > n else x)
    return tuple(np.asarray(o)[:n] for o in outs)


class GradCam:
    """Grad-CAM for one model, compiled once (about 10x faster than eager on a CPU). The analysis model is
    split at the conv maps: the body gives the maps, the head the features and logit, differentiated."""

    def __init__(self, analysis: keras.Model, n_conv: int) -> None:
        self.analysis = analysis
        self.n_conv = n_conv
        body = keras.Model(analysis.inputs[0], analysis.outputs[:n_conv])
        head = keras.Model(analysis.outputs[:n_conv], analysis.outputs[n_conv:])
        self._run = _compiled(body, head)

    @property
    def runtime(self) -> str:
        """What computes the maps, as results record it: Keras's backend ("tensorflow", or "jax" on the GPU)."""
        return str(keras.backend.backend())

    def warm_up(self, chunk: int = 64) -> None:
        """Compile for every batch that batch() can run: TensorFlow traces once for any size, JAX once for each
        padded size that a pass of up to `chunk` images can take (1, 2, 4 ... up to the power of two >= chunk)."""
        size = self.analysis.inputs[0].shape[1:3]
        padded = [1] if keras.backend.backend() != "jax" else [1 << k for k in range((chunk - 1).bit_length() + 1)]
        for n in padded:
            self.batch(np.zeros((n, *size), np.uint8), chunk)

    def batch(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """images: (n, H, W) uint8 -> logits (n,), cams (n, h, w) float32 >= 0 (raw), features (n, d)."""
        logits, cams, feats = [], [], []
        for i in range(0, len(images), chunk):
            cam, feat, target = self._run(images[i : i + chunk, :, :, None].astype(np.float32))
            logits.append(np.asarray(target))
            cams.append(np.asarray(cam))
            feats.append(np.asarray(feat))
        cam_all = np.concatenate(cams).astype(np.float32)
        cam_all[~np.isfinite(cam_all)] = 0.0
        return np.concatenate(logits).astype(np.float64), cam_all, np.concatenate(feats).astype(np.float32)

    def outputs(self, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """images: (n, H, W) uint8 -> logits (n,) float64, features (n, d): the forward pass alone."""
        outs = self.analysis.predict(images[..., None], batch_size=chunk, verbose=0)
        feats = np.concatenate(outs[self.n_conv : -1], axis=-1)
        return np.asarray(outs[-1][:, 0], dtype=np.float64), np.asarray(feats)

    def __call__(self, image: np.ndarray) -> CamResult:
        """image: (H, W) uint8 model input. Gradients of the logit (not the sigmoid) w.r.t. the conv maps."""
        logits, cams, feats = self.batch(image[None])
        return CamResult(logit=float(logits[0]), cam=cams[0], features=feats[0])
