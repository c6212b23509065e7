import keras
import numpy as np
import pytest

from worker.ml.gradcam import GradCam, analysis_model, cam_from
from worker.ml.model import FEATURES_LAYER


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((224, 224, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(4, 5, strides=4, activation="relu", name="conv_a")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="last")(x)
    feats = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    return keras.Model(inp, keras.layers.Dense(1, name="logit")(feats))


def test_gradcam_shape_range_and_logit(tiny_model: keras.Model) -> None:
    image = np.random.default_rng(1).integers(0, 256, (224, 224), dtype=np.uint8)
    analysis = analysis_model(tiny_model, "last")
    r = GradCam(analysis)(image)
    assert r.cam.shape == (27, 27)
    assert r.cam.dtype == np.float32
    assert np.isfinite(r.cam).all()
    assert r.cam.min() >= 0.0 and r.cam.max() <= 1.0
    expected_logit = float(tiny_model(image[None, :, :, None].astype("float32"))[0, 0])
    assert r.logit == pytest.approx(expected_logit, rel=1e-5, abs=1e-5)
    assert r.features.shape == (8,)


def test_gradcam_does_not_change_the_model(tiny_model: keras.Model) -> None:
    before = [w.copy() for w in tiny_model.get_weights()]
    GradCam(analysis_model(tiny_model, "last"))(np.full((224, 224), 128, np.uint8))
    assert all(np.array_equal(a, b) for a, b in zip(before, tiny_model.get_weights(), strict=True))


def test_all_zero_gradients_give_a_zero_map_not_nan() -> None:
    conv = np.random.default_rng(2).random((7, 7, 16)).astype(np.float32)
    cam = cam_from(conv, np.zeros_like(conv))
    assert cam.shape == (7, 7)
    assert not np.isnan(cam).any()
    assert (cam == 0).all()


def test_cam_is_normalised_to_its_peak() -> None:
    conv = np.zeros((4, 4, 2), np.float32)
    conv[1, 2, 0] = 3.0
    conv[3, 3, 0] = 1.5
    cam = cam_from(conv, np.ones_like(conv))
    assert cam[1, 2] == pytest.approx(1.0)
    assert cam[3, 3] == pytest.approx(0.5)
    assert cam.sum() == pytest.approx(1.5)


def test_negative_evidence_is_clipped() -> None:
    conv = np.ones((3, 3, 1), np.float32)
    cam = cam_from(conv, -np.ones_like(conv))
    assert (cam == 0).all()
