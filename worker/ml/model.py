"""Architectures. Every model takes (INPUT_SIZE, INPUT_SIZE, 1) uint8-valued floats and returns one logit.

The conversion to the backbone's range lives inside the model, so the saved file is self-contained.
A member is one MobileNet 0.25; the shipped model is an ensemble of members flattened into one graph,
each member's layers prefixed `m<i>_`, whose logit is the members' mean logit. Grad-CAM reads
`m<i>_<CAM_LAYER>` of each member and the gate the members' pooled features `m<i>_features` side by side.
"""

from __future__ import annotations

import keras

from worker.ml.spec import INPUT_SIZE

# Grad-CAM reads the last 14x14 block: on the honest validation its map puts a median 7 % of its mass in the
# outer 12 % frame, against 23 % for the last 7x7 block (conv_pw_13_relu, v1's choice); see the model card.
CAM_LAYER = "conv_pw_11_relu"
COARSE_CAM_LAYER = "conv_pw_13_relu"
FEATURES_LAYER = "features"
LOGIT_LAYER = "logit"


def build(arch: str = "mobilenet025", imagenet_weights: str | None = None, dropout: float = 0.3) -> keras.Model:
    """One member. arch: mobilenet025 (from ImageNet weights when given) or mobilenet025_scratch."""
    if arch not in ("mobilenet025", "mobilenet025_scratch"):
        raise ValueError(f"unknown architecture {arch!r}")
    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit")(inp)
    rgb = keras.layers.Concatenate(name="to_rgb")([x, x, x])
    weights = imagenet_weights if arch == "mobilenet025" else None
    backbone = keras.applications.MobileNet(input_tensor=rgb, include_top=False, alpha=0.25, weights=weights)
    feats = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(backbone.output)
    feats = keras.layers.Dropout(dropout, name="dropout")(feats)
    logit = keras.layers.Dense(1, name=LOGIT_LAYER)(feats)
    return keras.Model(inp, logit, name=arch)


def member_prefix(i: int) -> str:
    return f"m{i}_"


def ensemble(members: list[keras.Model]) -> keras.Model:
    """Members (each from `build`, weights loaded) -> one flat model: mean logit, concatenated features."""
    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    logits = []
    for i, member in enumerate(members):
        prefix = member_prefix(i)

        def renamed(layer: keras.layers.Layer, prefix: str = prefix) -> keras.layers.Layer:
            return layer.__class__.from_config({**layer.get_config(), "name": prefix + layer.name})

        clone = keras.models.clone_model(member, input_tensors=inp, clone_function=renamed)
        clone.set_weights(member.get_weights())
        logits.append(clone.get_layer(prefix + LOGIT_LAYER).output)
    if len(members) == 1:
        return keras.Model(inp, keras.layers.Identity(name=LOGIT_LAYER)(logits[0]), name="ensemble")
    return keras.Model(inp, keras.layers.Average(name=LOGIT_LAYER)(logits), name="ensemble")


def member_layers(n_members: int, layer: str) -> list[str]:
    """The name of `layer` in each member of an n-member ensemble."""
    return [member_prefix(i) + layer for i in range(n_members)]
