import numpy as np
import pytest

from tests import images
from worker.ml import gate, nonxray


def test_gate_rejects_far_features_and_colour() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, (500, 8))
    g = gate.fit(train)
    assert g.reason(train[0], 0.0) is None
    assert "does not look like a chest X-ray" in (g.reason(np.full(8, 8.0), 0.0) or "")
    assert "colour photograph" in (g.reason(train[0], 0.6) or "")
    assert (g.distances(train) <= g.max_distance).mean() > 0.99
    batch = np.stack([train[0], np.full(8, 8.0), train[1]])
    assert g.rejected(batch, np.array([0.0, 0.0, 0.6])).tolist() == [False, True, True]


def test_save_and_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = gate.fit(np.random.default_rng(1).normal(0, 1, (100, 4)))
    g.save(tmp_path / "g.npz")
    h = gate.Gate.load(tmp_path / "g.npz")
    assert h.max_distance == pytest.approx(g.max_distance)
    assert np.allclose(h.precision, g.precision, rtol=1e-5)


@pytest.fixture(scope="module")
def predictor():  # type: ignore[no-untyped-def]
    from worker.ml.inference import Predictor
    from worker.ml.spec import ModelSpec

    return Predictor(ModelSpec.load())


def _encode_rgb(rgb: np.ndarray) -> bytes:
    return images.encode(rgb, "PNG")


def test_shipped_gate_rejects_generated_non_radiographs(predictor) -> None:  # type: ignore[no-untyped-def]
    from worker.ml.preprocessing import ImageRejected

    others = list(nonxray.images(60, seed=123))
    rejected = 0
    for rgb in others:
        try:
            predictor.predict(_encode_rgb(rgb))
        except ImageRejected:
            rejected += 1
    assert rejected / len(others) >= 0.95


@pytest.mark.data
def test_shipped_gate_accepts_training_like_radiographs(predictor) -> None:  # type: ignore[no-untyped-def]
    if not images.SHARED_DATA.exists():
        pytest.skip(images.NO_DATA_REASON)
    for label in ("NORMAL", "PNEUMONIA"):
        for i in range(8):
            p = predictor.predict(images.real_radiograph(label, i))
            assert p.label in ("NORMAL", "PNEUMONIA")
