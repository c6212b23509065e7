"""Convert the Keras model to one LiteRT (TensorFlow Lite) graph that computes the logit, the pooled features and
the Grad-CAM map, with builtin operators only (LiteRT has no Flex delegate to run TensorFlow's own).

TensorFlow's gradient of the network needs operators LiteRT lacks (Relu6Grad, DepthwiseConv2dNativeBackpropInput),
so the tail of each member after its Grad-CAM layer (the last 14x14 block) is differentiated here, at export, layer
by layer, into forward operators: a ReLU6 is a mask (1 where 0 < y < 6, from its output y), a batch normalisation
in inference mode a constant per channel, a 1x1 convolution the 1x1 convolution by its transposed kernel, a
depthwise convolution the depthwise convolution of the (zero-interleaved, for a stride of 2) gradient by its kernel
turned half a turn, padding a crop, a global average a broadcast, a dense layer its transposed weights, the members'
mean a division. This is the exact derivative of the same network, not an approximation (worker.ml.equivalence
and the tests hold it to TensorFlow's GradientTape).

Imports TensorFlow and Keras: used by packaging (worker.ml.package), never by the serving worker.

    python -m worker.ml.litert_export [MODEL_DIR] [--data ../shared/data/chest_xray]

adds model.tflite to a packaged model and its card (worker.ml.package runs it when it packages a model).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from worker.ml.spec import DEFAULT_MODEL_DIR, sha256_file

LITERT_FILE = "model.tflite"
CARD_FIGURES = (
    "every other figure of this card was computed by the Keras model (model.keras) on TensorFlow when it was "
    "packaged; the CPU worker serves this file by default (INFERENCE_RUNTIME=litert), which gives the same answers "
    "(equivalence)"
)
Backward = Callable[[tf.Tensor, tf.Tensor | None], tf.Tensor]  # (d out, the layer's output) -> d in
# A wrong export on purpose (tests: the equivalence checks must catch it): "no_mask" drops every ReLU6 mask.
SABOTAGES = ("no_mask",)


def _tail(model: keras.Model, conv_layer: str) -> list[keras.layers.Layer]:
    """The layers after `conv_layer` up to the model's output, in order: one chain per member (each layer reads
    the previous one's output), ending with the ensemble's mean (or identity) of the members' logits."""
    names = [layer.name for layer in model.layers]
    start = model.get_layer(conv_layer)
    chain, tensor = [], start.output
    for layer in model.layers[names.index(conv_layer) + 1 :]:
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        if any(t is tensor for t in inputs):
            chain.append(layer)
            tensor = layer.output
    if not chain or chain[-1] is not model.layers[-1]:
        raise ValueError(f"{conv_layer} does not lead to the model's output through a chain of layers")
    return chain


def _input_shapes(model: keras.Model, conv_layer: str, tail: list[keras.layers.Layer]) -> list[Sequence[int]]:
    """The shape of each tail layer's (first) input."""
    return [model.get_layer(conv_layer).output.shape, *[layer.output.shape for layer in tail[:-1]]]


def _relu6_mask(y: tf.Tensor) -> tf.Tensor:
    """1 where 0 < y < 6, else 0, for y = relu6(x) in [0, 6]: ceil(y/6) - floor(y/6), in operators XNNPACK runs
    (comparisons and casts would leave its graph)."""
    q = y * (1.0 / 6.0)
    return tf.math.ceil(q) - tf.math.floor(q)


def _dilated(g: tf.Tensor, stride: int) -> tf.Tensor:
    """(n, h, w, c) -> (n, h*s, w*s, c) with g at [s*i, s*j] and zeros between (depth_to_space of [g, 0, ...])."""
    if stride == 1:
        return g
    zeros = g * 0.0  # not zeros_like: XNNPACK runs a product, not ZEROS_LIKE
    return tf.nn.depth_to_space(tf.concat([g] + [zeros] * (stride * stride - 1), axis=-1), stride)


def _depthwise_backward(layer: keras.layers.DepthwiseConv2D, x_shape: Sequence[int]) -> Backward:
    """d out / d in of a depthwise convolution (no dilation, depth multiplier 1) whose input is (n, H, W, c)."""
    (kh, kw), (s, s2) = layer.kernel_size, layer.strides
    if s != s2 or layer.dilation_rate != (1, 1) or layer.depth_multiplier != 1:
        raise ValueError(f"{layer.name}: unsupported depthwise convolution")
    flipped = tf.constant(np.asarray(layer.kernel)[::-1, ::-1])
    h, w = int(x_shape[1]), int(x_shape[2])
    if layer.padding == "same":
        pad_h, pad_w = max((-(-h // s) - 1) * s + kh - h, 0), max((-(-w // s) - 1) * s + kw - w, 0)
        top, left = pad_h // 2, pad_w // 2
    else:
        top = left = 0

    def backward(g: tf.Tensor, _: tf.Tensor | None) -> tf.Tensor:
        d = _dilated(g, s)  # (n, oh*s, ow*s, c): the output positions on the padded input's grid
        # grad[q] = sum_k d[q + top - k] kernel[k]: a valid correlation with the flipped kernel of d padded by
        # kh-1-top before and cut or padded to h+kh-1 after.
        rows, cols = kh - 1 - top + int(d.shape[1]), kw - 1 - left + int(d.shape[2])
        d = tf.pad(
            d, [[0, 0], [kh - 1 - top, max(h + kh - 1 - rows, 0)], [kw - 1 - left, max(w + kw - 1 - cols, 0)], [0, 0]]
        )
        return tf.nn.depthwise_conv2d(d[:, : h + kh - 1, : w + kw - 1, :], flipped, [1, 1, 1, 1], "VALID")

    return backward


def _backward(layer: keras.layers.Layer, x_shape: Sequence[int], sabotage: str) -> Backward:
    """d out / d in of one tail layer as forward operators (its weights read here, eagerly, as constants)."""
    if isinstance(layer, keras.layers.ReLU):
        cfg = layer.get_config()
        if cfg["max_value"] != 6.0 or cfg["negative_slope"] or cfg["threshold"]:
            raise ValueError(f"{layer.name}: only ReLU6 is supported")
        return (lambda g, y: g) if sabotage == "no_mask" else (lambda g, y: g * _relu6_mask(y))
    if isinstance(layer, keras.layers.BatchNormalization):
        gamma = np.asarray(layer.gamma) if layer.scale else 1.0
        scale = tf.constant(np.asarray(gamma / np.sqrt(np.asarray(layer.moving_variance) + layer.epsilon), np.float32))
        return lambda g, _: g * scale
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return _depthwise_backward(layer, x_shape)
    if isinstance(layer, keras.layers.Conv2D):
        if layer.kernel_size != (1, 1) or layer.strides != (1, 1):
            raise ValueError(f"{layer.name}: only 1x1 convolutions of stride 1 are supported")
        kernel_t = tf.constant(np.transpose(np.asarray(layer.kernel), (0, 1, 3, 2)))
        return lambda g, _: tf.nn.conv2d(g, kernel_t, 1, "VALID")
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        h, w = int(x_shape[1]), int(x_shape[2])
        return lambda g, _: g[:, top : top + h, left : left + w, :]
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        h, w = int(x_shape[1]), int(x_shape[2])
        spread = tf.ones((1, h, w, 1), tf.float32) / float(h * w)
        return lambda g, _: g[:, None, None, :] * spread
    if isinstance(layer, keras.layers.Dropout | keras.layers.Identity):
        return lambda g, _: g
    if isinstance(layer, keras.layers.Dense):
        if layer.activation is not keras.activations.linear:
            raise ValueError(f"{layer.name}: only a linear dense layer is supported")
        weights_t = tf.constant(np.asarray(layer.kernel).T)
        return lambda g, _: tf.matmul(g, weights_t)
    if isinstance(layer, keras.layers.Average):
        n = len(layer.input)
        return lambda g, _: g / float(n)
    raise ValueError(f"{layer.name}: no backward rule for {type(layer).__name__}")


def serving_function(
    model: keras.Model, card: dict[str, Any], sabotage: str = ""
) -> tf.types.experimental.ConcreteFunction:
    """images (n, S, S, 1) float32 grey levels -> cams (n, h, w) >= 0 (raw), features (n, d), logits (n, 1): the
    LiteRT model's outputs output_0, output_1 and output_2 of its one signature (worker.ml.litert.SIGNATURE)."""
    convs, feats = card["conv_layers"], card["feature_layers"]
    tails = [_tail(model, name) for name in convs]
    rules = [
        [
            (layer.name, _backward(layer, x_shape, sabotage))
            for layer, x_shape in zip(tail, _input_shapes(model, name, tail), strict=True)
        ][::-1]
        for name, tail in zip(convs, tails, strict=True)
    ]
    needed = sorted({layer.name for tail in tails for layer in tail if isinstance(layer, keras.layers.ReLU)})
    outputs = [model.get_layer(n).output for n in [*convs, *feats, *needed]]
    net = keras.Model(model.inputs, [*outputs, model.output])
    size = int(card["input_size"])

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)], autograph=False)
    def serve(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        outs = net(x, training=False)
        maps, pooled = outs[: len(convs)], outs[len(convs) : len(convs) + len(feats)]
        relus = dict(zip(needed, outs[len(convs) + len(feats) : -1], strict=True))
        logit = outs[-1]
        total = None
        for conv_map, backwards in zip(maps, rules, strict=True):
            g = logit * 0.0 + 1.0  # d logit / d logit (not ones_like: SHAPE and BROADCAST_TO leave XNNPACK's graph)
            for name, backward in backwards:
                g = backward(g, relus.get(name))
            weights = tf.reduce_mean(g, axis=[1, 2], keepdims=True)
            cam = tf.reduce_sum(conv_map * weights, axis=-1)
            total = cam if total is None else total + cam
        # The logits stay (n, 1): slicing or reshaping them to (n,) is an operator XNNPACK leaves out.
        return tf.nn.relu(total), tf.concat(pooled, axis=-1), logit

    return serve.get_concrete_function()


def convert(model: keras.Model, card: dict[str, Any], sabotage: str = "") -> bytes:
    """The LiteRT flatbuffer of `serving_function`, float32, builtin operators only (conversion fails otherwise)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # The weights as constants: the converter folds each batch normalisation into its convolution then (it left
    # Keras 3's variables as resource variables read at every call otherwise).
    fn = convert_variables_to_constants_v2(serving_function(model, card, sabotage))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return bytes(converter.convert())


def export(directory: Path, data_root: Path | None = None) -> dict[str, Any]:
    """Convert the card's weights file in `directory` to model.tflite beside it and record it in the card (file,
    sha256, the sha256 of the Keras file it came from); with data_root (../shared/data/chest_xray), compare it with
    the Keras model first (worker.ml.equivalence) and refuse to record a conversion that does not give the same
    answers. Returns the card's "litert" entry."""
    card_path = directory / "card.json"
    card = json.loads(card_path.read_text())
    card.pop("litert", None)
    model = keras.models.load_model(directory / card["weights_file"], compile=False)
    (directory / LITERT_FILE).write_bytes(convert(model, card))
    entry: dict[str, Any] = {
        "file": LITERT_FILE,
        "sha256": sha256_file(directory / LITERT_FILE),
        "converted_from_sha256": card["sha256"],
        "converter": f"TensorFlow {tf.__version__} TFLiteConverter, float32, builtin operators only, XNNPACK runs all",
        "grad_cam": "the tail after each Grad-CAM layer differentiated at export into forward operators "
        "(worker.ml.litert_export), the exact gradient of the same network",
        "card_figures": CARD_FIGURES,
    }
    try:
        if data_root is not None:
            entry["equivalence"] = _equivalence(directory, {**card, "litert": entry}, data_root)
        card_path.write_text(json.dumps({**card, "litert": entry}, indent=2) + "\n")
    except BaseException:  # no card names a conversion that failed its check
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        (directory / LITERT_FILE).unlink()
        raise
    return entry


def _equivalence(directory: Path, card: dict[str, Any], data_root: Path) -> dict[str, Any]:
    """The converted model against the Keras model (the reference) on equivalence.image_set; raises if they differ."""
    from worker.ml import equivalence
    from worker.ml.inference import Predictor
    from worker.ml.spec import ModelSpec

    (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n")  # the LiteRT engine reads its entry
    spec = ModelSpec.load(directory)
    images, chroma, what = equivalence.image_set(data_root)
    reference = equivalence.answers(Predictor(spec, 32), images, chroma)
    found = equivalence.compare(reference, equivalence.answers(Predictor(spec, 32, runtime="litert"), images, chroma),
                                spec.cam_scale)  # fmt: skip
    if found.failures():
        raise SystemExit(f"the LiteRT model does not give the Keras model's answers: {'; '.join(found.failures())}")
    return {"images": what, "reference": f"Keras {keras.__version__} on TensorFlow {tf.__version__}", **found.as_dict()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", nargs="?", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--data", type=Path, help="../shared/data/chest_xray: compare with the Keras model on its images")
    args = p.parse_args(argv)
    print(json.dumps(export(args.directory, args.data), indent=1))


if __name__ == "__main__":
    main()
