"""Candidate architectures. Every model takes (224, 224, 1) uint8-valued floats and returns one logit.

The conversion to the backbone's range lives inside the model, so the saved file is self-contained.
The last convolutional block is named so Grad-CAM can find it (`LAST_CONV[arch]`).
"""

from __future__ import annotations

import keras

from worker.ml.preprocessing import INPUT_SIZE

LAST_CONV = {
    "mobilenet025": "conv_pw_13_relu",
    "mobilenet025_scratch": "conv_pw_13_relu",
}
FEATURES_LAYER = "features"


def build(arch: str, imagenet_weights: str | None = None, dropout: float = 0.3) -> keras.Model:
    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit")(inp)
    if arch in ("mobilenet025", "mobilenet025_scratch"):
        rgb = keras.layers.Concatenate(name="to_rgb")([x, x, x])
        weights = imagenet_weights if arch == "mobilenet025" else None
        backbone = keras.applications.MobileNet(input_tensor=rgb, include_top=False, alpha=0.25, weights=weights)
        conv = backbone.output
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    feats = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(conv)
    feats = keras.layers.Dropout(dropout, name="dropout")(feats)
    logit = keras.layers.Dense(1, name="logit")(feats)
    return keras.Model(inp, logit, name=arch)
