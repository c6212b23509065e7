import keras
import numpy as np
import pytest

from worker.ml.gradcam import GradCam, analysis_model, cam_from, scaled
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


def _gradcam(model: keras.Model, convs: tuple[str, ...] = ("last",)) -> GradCam:
    return GradCam(analysis_model(model, convs, (FEATURES_LAYER,)), len(convs))


def test_gradcam_shape_range_and_logit(tiny_model: keras.Model) -> None:
    image = np.random.default_rng(1).integers(0, 256, (224, 224), dtype=np.uint8)
    r = _gradcam(tiny_model)(image)
    assert r.cam.shape == (27, 27)
    assert r.cam.dtype == np.float32
    assert np.isfinite(r.cam).all() and r.cam.min() >= 0.0
    expected_logit = float(tiny_model(image[None, :, :, None].astype("float32"))[0, 0])
    assert r.logit == pytest.approx(expected_logit, rel=1e-5, abs=1e-5)
    assert r.features.shape == (8,)


def test_the_batch_path_gives_each_image_its_own_map(tiny_model: keras.Model) -> None:
    x = np.random.default_rng(2).integers(0, 256, (5, 224, 224), dtype=np.uint8)
    gc = _gradcam(tiny_model)
    logits, cams, feats = gc.batch(x, chunk=2)
    for i in range(5):
        one = gc(x[i])
        assert logits[i] == pytest.approx(one.logit, abs=1e-4)
        assert np.allclose(cams[i], one.cam, atol=1e-4)
        assert np.allclose(feats[i], one.features, atol=1e-5)


def test_the_compiled_map_equals_the_reference_formula(tiny_model: keras.Model) -> None:
    import tensorflow as tf

    image = np.random.default_rng(3).integers(0, 256, (224, 224), dtype=np.uint8)
    inner = keras.Model(tiny_model.inputs, [tiny_model.get_layer("last").output, tiny_model.output])
    x = tf.convert_to_tensor(image[None, :, :, None], tf.float32)
    with tf.GradientTape() as tape:
        conv, logit = inner(x)
        target = logit[:, 0]
    grads = tape.gradient(target, conv)
    expected = cam_from([conv.numpy()[0]], [grads.numpy()[0]])
    assert np.allclose(_gradcam(tiny_model)(image).cam, expected, atol=1e-5)


def test_gradcam_does_not_change_the_model(tiny_model: keras.Model) -> None:
    before = [w.copy() for w in tiny_model.get_weights()]
    _gradcam(tiny_model)(np.full((224, 224), 128, np.uint8))
    assert all(np.array_equal(a, b) for a, b in zip(before, tiny_model.get_weights(), strict=True))


def test_all_zero_gradients_give_a_zero_map_not_nan() -> None:
    conv = np.random.default_rng(2).random((7, 7, 16)).astype(np.float32)
    cam = cam_from([conv], [np.zeros_like(conv)])
    assert cam.shape == (7, 7)
    assert not np.isnan(cam).any()
    assert (cam == 0).all()


def test_the_map_is_raw_evidence_not_normalised_per_image() -> None:
    conv = np.zeros((4, 4, 2), np.float32)
    conv[1, 2, 0] = 3.0
    conv[3, 3, 0] = 1.5
    weak = cam_from([conv], [np.full_like(conv, 0.1)])
    strong = cam_from([conv], [np.ones_like(conv)])
    assert strong[1, 2] == pytest.approx(3.0) and weak[1, 2] == pytest.approx(0.3)
    # On the absolute scale the weak study stays faint; a per-image normalisation would draw both at 1.0.
    assert scaled(weak, 3.0).max() == pytest.approx(0.1) and scaled(strong, 3.0).max() == pytest.approx(1.0)


def test_members_maps_add_up() -> None:
    conv = np.ones((3, 3, 1), np.float32)
    one = cam_from([conv], [np.ones_like(conv)])
    two = cam_from([conv, conv], [np.ones_like(conv), np.ones_like(conv)])
    assert np.allclose(two, 2 * one)


def test_negative_evidence_is_clipped_and_scale_must_be_positive() -> None:
    conv = np.ones((3, 3, 1), np.float32)
    assert (cam_from([conv], [-np.ones_like(conv)]) == 0).all()
    with pytest.raises(ValueError, match="cam_scale"):
        scaled(conv[..., 0], 0.0)
