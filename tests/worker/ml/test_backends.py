"""The shipped model's Grad-CAM gives the same logits, maps and features on Keras 3's JAX backend (the GPU worker's)
as on TensorFlow (the CPU worker's), and a JAX worker never imports TensorFlow.

The backend is fixed when keras is first imported, so each backend runs in its own process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import images
from worker.ml import preprocessing
from worker.ml.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[3]

# Loads the shipped model, runs GradCam.batch in chunks of 3 (so JAX pads every chunk to 4) and saves the outputs.
# The Predictor is built for passes of 1 image: its warm-up compiles JAX's size 1 only, and the chunks compile
# size 4. With the default 64, the warm-up compiled sizes 1 to 64 (7 compilations, 51 s of CPU on 2 cores), none
# of which the comparison uses.
RUN = """
import json, sys
import keras, numpy as np
from worker.ml.inference import Predictor
from worker.ml.spec import ModelSpec
logits, cams, feats = Predictor(ModelSpec.load(), 1).gradcam.batch(np.load(sys.argv[1]), chunk=3)
np.savez(sys.argv[2], logits=logits, cams=cams, feats=feats)
loaded = sorted(m for m in ("tensorflow", "jax") if m in sys.modules)
dtypes = [a.dtype.name for a in (logits, cams, feats)]
print(json.dumps({"backend": keras.backend.backend(), "loaded": loaded, "dtypes": dtypes}))
"""


def _inputs() -> np.ndarray:
    """(n, 224, 224) uint8: synthetic radiographs from fixed seeds, plus real ones when ../shared has them."""
    synthetic = [images.chest_like(320 + 16 * s, 256, seed=s) for s in range(4)]
    real = (
        [
            preprocessing.decode(images.real_radiograph(label, i)).gray
            for label in ("PNEUMONIA", "NORMAL")
            for i in (0, 1)
        ]
        if images.SHARED_DATA.exists()
        else []
    )
    grays = synthetic + real
    return np.stack([preprocessing.model_input(g) for g in grays])


def _run(backend: str, inputs: Path, tmp_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    out = tmp_path / f"{backend}.npz"
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(inputs), str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as saved:
        return json.loads(done.stdout.splitlines()[-1]), dict(saved)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, dict[str, np.ndarray]]]:
    tmp = tmp_path_factory.mktemp("backends")
    np.save(tmp / "inputs.npy", _inputs())
    return {backend: _run(backend, tmp / "inputs.npy", tmp) for backend in ("tensorflow", "jax")}


def test_each_backend_runs_alone(runs: dict[str, tuple[dict, dict[str, np.ndarray]]]) -> None:
    assert runs["jax"][0]["backend"] == "jax" and runs["jax"][0]["loaded"] == ["jax"]
    assert runs["tensorflow"][0]["backend"] == "tensorflow" and "tensorflow" in runs["tensorflow"][0]["loaded"]
    for info, _ in runs.values():
        assert info["dtypes"] == ["float64", "float32", "float32"]


def test_jax_gives_tensorflows_logits_maps_and_features(runs: dict[str, tuple[dict, dict[str, np.ndarray]]]) -> None:
    tf_out, jax_out = runs["tensorflow"][1], runs["jax"][1]
    n = len(_inputs())
    assert tf_out["logits"].shape == (n,) and tf_out["cams"].shape[0] == n and tf_out["feats"].shape[0] == n
    # The maps must hold evidence, or equal maps would prove nothing.
    assert (tf_out["cams"].max(axis=(1, 2)) > 0).all() and tf_out["cams"].min() >= 0
    # XLA's compiled convolutions round differently (conv maps move by about 3e-5), and the gradient of a ReLU6
    # network changes in steps, so a map can move by more than rounding: maps are held to the drawn scale, one grey
    # level in 255 of the card's cam_scale; logits and features to 1e-3 of their largest value.
    tolerance = {
        "logits": 1e-3 * float(np.abs(tf_out["logits"]).max()),
        "feats": 1e-3 * float(np.abs(tf_out["feats"]).max()),
        "cams": ModelSpec.load().cam_scale / 255,
    }
    for key, atol in tolerance.items():
        assert jax_out[key].shape == tf_out[key].shape, key
        worst = float(np.abs(jax_out[key] - tf_out[key]).max())
        assert worst <= atol, f"{key}: JAX differs from TensorFlow by up to {worst:.3g} (tolerance {atol:.3g})"
