"""The LiteRT engine (issue 31) on images made here: it runs everywhere, without ../shared.

The same answers as TensorFlow on synthetic radiographs and non-radiographs; a wrong export is caught; the exported
gradient is the exact one (TensorFlow against TensorFlow, on a small network with every layer kind the export
knows); XNNPACK runs the whole graph; the card's checks; and a worker serving through LiteRT loads no TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from tests import images
from worker.ml import equivalence, litert_export, preprocessing
from worker.ml.gradcam import GradCam, analysis_model
from worker.ml.inference import Predictor
from worker.ml.litert import LiteRtEngine, whole_graph_delegated
from worker.ml.spec import IntegrityError, ModelSpec, sha256_file

ROOT = Path(__file__).resolve().parents[3]


def synthetic() -> tuple[np.ndarray, np.ndarray]:
    """(n, 224, 224) uint8 model inputs and their chroma: chest-like images of several sizes and seeds (judged),
    two of them inverted, and colour noise (refused)."""
    grays = [preprocessing.model_input(images.chest_like(300 + 24 * s, 256 + 8 * s, seed=s)) for s in range(6)]
    noise = [images.colour_noise(224, seed=s) for s in range(2)]
    x = np.stack([*grays, *(255 - g for g in grays[:2]), *(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in noise)])
    return x, np.array([0.0] * 8 + [0.5, 0.5])


@pytest.fixture(scope="module")
def reference() -> Predictor:
    return Predictor(ModelSpec.load(), 8)


@pytest.fixture(scope="module")
def litert() -> Predictor:
    return Predictor(ModelSpec.load(), 8, runtime="litert")


def model_dir_with(tmp: Path, tflite: bytes) -> Path:
    """A copy of the shipped model folder whose model.tflite is `tflite`, recorded in its card."""
    folder = tmp / "model"
    shutil.copytree(ModelSpec.load().directory, folder)
    (folder / "model.tflite").write_bytes(tflite)
    card = json.loads((folder / "card.json").read_text())
    card["litert"]["sha256"] = sha256_file(folder / "model.tflite")
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_litert_gives_tensorflows_answers_on_synthetic_images(reference: Predictor, litert: Predictor) -> None:
    x, chroma = synthetic()
    found = equivalence.compare(equivalence.answers(reference, x, chroma), equivalence.answers(litert, x, chroma),
                                reference.spec.cam_scale)  # fmt: skip
    assert found.failures() == [], found
    assert found.refused >= 2 and found.cams_compared >= 4  # refusals and maps were compared, not only skipped
    assert found.max_cam_difference < 0.01  # of full strength on the drawn scale
    assert litert.runtime == "litert" and reference.runtime == "tensorflow"


def test_a_wrong_export_is_caught(reference: Predictor, tmp_path: Path) -> None:
    """The same conversion with every ReLU6 mask dropped from the exported gradient: logits and features are
    untouched, so only the maps can tell, and the comparison must fail on them."""
    spec = ModelSpec.load()
    model = keras.models.load_model(spec.directory / spec.weights_file, compile=False)
    wrong = Predictor(ModelSpec.load(model_dir_with(tmp_path, litert_export.convert(model, spec.card, "no_mask"))), 8,
                      runtime="litert")  # fmt: skip
    x, chroma = synthetic()
    found = equivalence.compare(equivalence.answers(reference, x, chroma), equivalence.answers(wrong, x, chroma),
                                spec.cam_scale)  # fmt: skip
    assert found.max_probability_difference <= 1e-3 and found.labels_differ == 0
    assert any("Grad-CAM" in failure for failure in found.failures()), found


def _tiny(seed: int = 0) -> tuple[keras.Model, dict[str, object]]:
    """A small MobileNet-like network with every layer kind the export differentiates: ZeroPadding2D, depthwise
    convolutions of stride 2 (valid and same) and 1, 1x1 convolutions, batch normalisations with their own
    statistics, ReLU6, global average, dense, and the members' mean of two."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((32, 32, 1))
    x = keras.layers.Rescaling(1 / 64.0)(inp)
    logits, convs, feats = [], [], []
    for m in range(2):
        h = keras.layers.Conv2D(8, 3, padding="same")(x)
        h = keras.layers.ReLU(6.0, name=f"m{m}_cam")(h)
        convs.append(f"m{m}_cam")
        h = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(h)
        for kind in ("valid2", "bn", "relu", "pw", "bn", "relu", "same2", "bn", "relu", "same1", "bn", "relu"):
            h = {
                "valid2": lambda t: keras.layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False)(t),
                "same2": lambda t: keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(t),
                "same1": lambda t: keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(t),
                "pw": lambda t: keras.layers.Conv2D(12, 1, use_bias=False)(t),
                "bn": lambda t: keras.layers.BatchNormalization()(t),
                "relu": lambda t: keras.layers.ReLU(6.0)(t),
            }[kind](h)
        pooled = keras.layers.GlobalAveragePooling2D(name=f"m{m}_features")(h)
        feats.append(f"m{m}_features")
        logits.append(keras.layers.Dense(1)(keras.layers.Dropout(0.3)(pooled)))
    model = keras.Model(inp, keras.layers.Average(name="logit")(logits))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # statistics of its own, not the identity
            c = layer.gamma.shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 2, c), rng.normal(0, 0.3, c), rng.normal(0, 0.3, c), rng.uniform(0.2, 3, c)]
            )
    return model, {"conv_layers": convs, "feature_layers": feats, "input_size": 32}


def test_the_exported_gradient_is_tensorflows(reference: Predictor) -> None:
    """Both in TensorFlow (no LiteRT rounding): the export's hand-written backward pass against GradientTape."""
    import tensorflow as tf

    model, card = _tiny()
    x = np.random.default_rng(1).integers(0, 256, (6, 32, 32), dtype=np.uint8)
    gradcam = GradCam(analysis_model(model, card["conv_layers"], card["feature_layers"]), 2)  # type: ignore[arg-type]
    logits, cams, feats = gradcam.batch(x)
    xf = x[..., None].astype(np.float32)
    exported_cams, exported_feats, exported_logits = litert_export.serving_function(model, card)(tf.constant(xf))
    assert cams.max() > 0 and np.ptp(cams, axis=(1, 2)).min() > 0  # maps with evidence, or equality proves nothing
    assert np.allclose(exported_logits.numpy()[:, 0], logits, atol=1e-5)
    assert np.allclose(exported_feats.numpy(), feats, atol=1e-5)
    assert np.abs(exported_cams.numpy() - cams).max() <= 1e-5 * cams.max()
    wrong_cams = litert_export.serving_function(model, card, "no_mask")(tf.constant(xf))[0]
    assert np.abs(wrong_cams.numpy() - cams).max() > 0.01 * cams.max()


def test_xnnpack_runs_the_whole_graph(litert: Predictor) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    engine = litert.gradcam
    assert isinstance(engine, LiteRtEngine) and engine.delegated()
    plain = Interpreter(
        model_path=str(litert.spec.litert_path()),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    plain.allocate_tensors()
    assert not whole_graph_delegated(plain)  # the check can tell a graph XNNPACK does not run


def test_the_card_checks_the_converted_file(tmp_path: Path) -> None:
    folder = model_dir_with(tmp_path, (ModelSpec.load().directory / "model.tflite").read_bytes())
    assert ModelSpec.load(folder).litert_path() == folder / "model.tflite"
    with (folder / "model.tflite").open("r+b") as fh:  # one byte changed
        fh.seek(4096)
        byte = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(IntegrityError, match="sha256"):
        LiteRtEngine(ModelSpec.load(folder))
    card = json.loads((folder / "card.json").read_text())
    card["litert"]["sha256"] = sha256_file(folder / "model.tflite")
    card["litert"]["converted_from_sha256"] = "0" * 64  # a conversion of another model.keras
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(IntegrityError, match="converted from"):
        ModelSpec.load(folder).litert_path()
    del card["litert"]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(IntegrityError, match="names no LiteRT model"):
        Predictor(ModelSpec.load(folder), runtime="litert")


# The worker's serving path in a fresh process, as a Celery pool child runs it: Django, the pipeline and the tasks
# imported, the model loaded through diagnosis.predictor, a study judged; then what is loaded, the RSS and times.
SERVE = """
import json, os, sys, time
start = time.perf_counter()
import django
django.setup()
from diagnosis import pipeline, predictor, tasks
from tests import images
p = predictor.get_predictor()
loaded = time.perf_counter()
data = images.real_radiograph("PNEUMONIA", 0) if images.SHARED_DATA.exists() else images.png(640, 512)
outcome = p.predict_batch([data])[0]  # a Prediction, or the synthetic image refused (by the gate: the model ran)
done = time.perf_counter()
import psutil
top = {m.split(".")[0] for m in sys.modules}
frameworks = sorted(top & {"tensorflow", "keras", "jax", "torch"})
rss_mb = psutil.Process().memory_info().rss / 1e6
runtime = getattr(outcome, "runtime", p.runtime)
print(json.dumps({"runtime": runtime, "frameworks": frameworks, "rss_mb": rss_mb, "load_s": loaded - start,
                  "first_result_s": done - start}))
"""


@pytest.mark.parametrize("runtime", ["litert", "tensorflow"])
def test_a_worker_serving_through_litert_loads_no_tensorflow(runtime: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "xrayweb.settings", "INFERENCE_RUNTIME": runtime,
           "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "t"), "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", SERVE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{runtime}: {info}")  # -s shows what it imports, its RSS and its time to the first result
    assert info["runtime"] == runtime
    # The TensorFlow run shows the check can fail: the same script finds Keras and TensorFlow loaded there.
    assert info["frameworks"] == [] if runtime == "litert" else {"keras", "tensorflow"} <= set(info["frameworks"])
