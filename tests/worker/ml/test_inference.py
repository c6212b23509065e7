"""The shipped model on real radiographs: known calls, the card's figures reproduced, and the heatmap rule."""

import cv2
import numpy as np
import pytest

from tests import images
from tests.needs import need_training_images
from worker.ml import calibration, data
from worker.ml.inference import Predictor
from worker.ml.prediction import Prediction

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def predictor(shipped_predictor: Predictor) -> Predictor:
    need_training_images()
    return shipped_predictor


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))


def test_the_16_official_validation_images_reproduce_the_cards_probabilities(predictor: Predictor) -> None:
    # A preprocessing regression (a lost corner mask, another resize, a changed colour conversion) moves these.
    items = data.list_folder(images.SHARED_DATA / "val")
    inputs, _ = data.load_inputs(items)
    logits, _, _ = predictor.gradcam.batch(inputs)
    probs = calibration.probabilities(logits, predictor.spec.temperature)
    card = predictor.spec.card["official_val_16"]
    assert np.allclose(probs, card["probabilities"], atol=2e-3)
    calls = (probs >= predictor.spec.threshold).astype(int)
    labels = np.array([i.label for i in items])
    assert int(((calls == 1) & (labels == 1)).sum()) == card["confusion"]["tp"]
    assert int(((calls == 0) & (labels == 0)).sum()) == card["confusion"]["tn"]


@pytest.mark.parametrize(("label", "index"), [("NORMAL", 6), ("NORMAL", 7), ("PNEUMONIA", 0), ("PNEUMONIA", 5)])
def test_known_radiographs_get_their_label(predictor: Predictor, label: str, index: int) -> None:
    assert predictor.predict(images.real_radiograph(label, index)).label == label


def test_a_normal_call_draws_no_map_and_leaves_the_radiograph_untouched(predictor: Predictor) -> None:
    data_ = images.real_radiograph("NORMAL", 7)
    p = predictor.predict(data_)
    assert p.label == "NORMAL"
    assert _decode(p.heatmap_png).max() < 10  # inferno's zero is black
    from worker.ml import preprocessing

    gray = preprocessing.display_image(preprocessing.decode(data_).gray)
    over = _decode(p.overlay_jpeg).astype(int)  # a JPEG: within a few grey levels, and no colour
    assert np.abs(over - cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)).mean() < 1.5
    assert np.abs(over[..., 0] - over[..., 2]).max() <= 3


def test_a_pneumonia_call_draws_its_evidence_on_the_absolute_scale(predictor: Predictor) -> None:
    image = data.load_inputs(data.list_folder(images.SHARED_DATA / "val"))[0][-1]
    r = predictor.gradcam(image)
    shown = predictor.shown_cam(r.cam, "PNEUMONIA")
    assert shown.max() > 0.2  # a confident pneumonia has visible evidence
    assert np.allclose(shown, np.clip(r.cam / predictor.spec.cam_scale, 0, 1))
    assert not predictor.shown_cam(r.cam, "NORMAL").any()
    # Not stretched per image: half the raw evidence is drawn at (at most) half the strength.
    assert predictor.shown_cam(r.cam / 2, "PNEUMONIA").max() <= shown.max() / 2 + 1e-6


def test_a_batch_judges_each_image_alone_and_matches_one_at_a_time(predictor: Predictor) -> None:
    from worker.ml import preprocessing

    good_normal, good_pneumonia = images.real_radiograph("NORMAL", 7), images.real_radiograph("PNEUMONIA", 0)
    negative = images.encode(255 - preprocessing.decode(good_normal).gray)
    photo = images.encode(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8))
    batch = [good_normal, b"not an image", negative, photo, good_pneumonia]
    outcomes = predictor.predict_batch(batch)
    assert len(outcomes) == 5
    assert isinstance(outcomes[1], preprocessing.ImageRejected) and "not a JPEG or PNG" in str(outcomes[1])
    assert isinstance(outcomes[2], preprocessing.ImageRejected) and "inverted" in str(outcomes[2])
    assert isinstance(outcomes[3], preprocessing.ImageRejected)
    for i in (0, 4):
        single, judged = predictor.predict(batch[i]), outcomes[i]
        assert not isinstance(judged, preprocessing.ImageRejected)
        assert judged.label == single.label
        assert abs(judged.probability - single.probability) < 1e-4


def test_a_batch_runs_in_passes_of_the_predictors_batch_size(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[int] = []
    run = predictor.gradcam._run

    def counted(x: np.ndarray) -> object:
        passes.append(len(x))
        return run(x)

    monkeypatch.setattr(predictor.gradcam, "_run", counted)
    monkeypatch.setattr(predictor, "batch", 3)
    assert len(predictor.predict_batch([images.real_radiograph("NORMAL", 7)] * 5)) == 5
    assert passes == [3, 2]


def test_decode_and_render_threads_give_the_same_outcomes_in_the_same_order(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from worker.ml import overlay, preprocessing

    batch = [images.real_radiograph(label, i) for label in ("NORMAL", "PNEUMONIA") for i in range(4)]
    batch.insert(3, b"not an image")
    serial = predictor.predict_batch(batch)
    threads: set[str] = set()
    for module, name in ((preprocessing, "decode"), (overlay, "render")):
        original = getattr(module, name)

        def recorded(*args: object, _original: object = original) -> object:
            threads.add(threading.current_thread().name)
            return _original(*args)  # type: ignore[operator]

        monkeypatch.setattr(module, name, recorded)
    with ThreadPoolExecutor(3, thread_name_prefix="predictor") as pool:
        monkeypatch.setattr(predictor, "_pool", pool)
        monkeypatch.setattr(predictor, "_threads", 3)  # each thread takes every third image
        pooled = predictor.predict_batch(batch)
    assert threads and all(t.startswith("predictor") for t in threads)  # the pool did the work
    assert [type(o) for o in pooled] == [type(o) for o in serial]
    assert str(pooled[3]) == str(serial[3])
    for a, b in zip(pooled, serial, strict=True):
        if not isinstance(a, preprocessing.ImageRejected):
            assert not isinstance(b, preprocessing.ImageRejected)
            assert (a.label, a.probability, a.heatmap_png, a.overlay_jpeg) == (
                b.label,
                b.probability,
                b.heatmap_png,
                b.overlay_jpeg,
            )


def test_working_copies_are_judged_as_their_originals(predictor: Predictor) -> None:
    """Issue 12, decode once: judged from the copies the web server made, radiographs (one enlarged to a clinical
    size), a negative and a radiograph in colour get the same calls, probabilities and refusals as from the
    originals."""
    from worker.ml import preprocessing, working

    normal = images.real_radiograph("NORMAL", 7)
    large = cv2.resize(preprocessing.decode(images.real_radiograph("PNEUMONIA", 0)).gray, (2000, 1700))
    negative = images.encode(255 - preprocessing.decode(normal).gray)
    gray = preprocessing.decode(normal).gray.astype(np.float32)
    tinted = images.encode(
        np.stack([gray, gray * 0.5, gray * 0.2], axis=-1).astype(np.uint8)
    )  # a radiograph, in colour
    originals = [normal, images.encode(large), negative, tinted, images.real_radiograph("PNEUMONIA", 5)]
    copies = [working.make(preprocessing.decode(data), predictor.spec.input_size) for data in originals]
    prepared = predictor.prepare_copies(copies)
    assert all(p is not None for p in prepared)
    from_copies = predictor.draw(predictor.judge_prepared([p for p in prepared if p is not None]))
    from_originals = predictor.predict_batch(originals)
    assert [type(o) for o in from_copies] == [type(o) for o in from_originals]
    assert isinstance(from_copies[2], preprocessing.ImageRejected) and "inverted" in str(from_copies[2])
    assert isinstance(from_copies[3], preprocessing.ImageRejected) and "colour photograph" in str(from_copies[3])
    for a, b in zip(from_copies, from_originals, strict=True):
        if isinstance(a, preprocessing.ImageRejected):
            assert str(a) == str(b)  # the colour travels with its copy to the gate
        else:
            assert isinstance(a, Prediction) and isinstance(b, Prediction)
            assert (a.label, a.probability) == (b.label, b.probability)
    other = working.make(preprocessing.decode(normal), predictor.spec.input_size + 32)
    assert predictor.prepare_copies([other]) == [None]  # made for another model: its original is decoded
