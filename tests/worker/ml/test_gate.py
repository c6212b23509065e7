from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.needs import need_training_images
from worker.ml import gate
from worker.ml.inference import Predictor
from worker.ml.preprocessing import ImageRejected


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


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    g = gate.fit(np.random.default_rng(1).normal(0, 1, (100, 4)))
    g.save(tmp_path / "g.npz")
    h = gate.Gate.load(tmp_path / "g.npz")
    assert h.max_distance == pytest.approx(g.max_distance)
    assert np.allclose(h.precision, g.precision, rtol=1e-5)


@pytest.fixture(scope="module")
def predictor(shipped_predictor: Predictor) -> Predictor:
    return shipped_predictor


def _held_out_non_radiographs() -> list[tuple[str, bytes]]:
    """Photographs and scientific images that ship with scikit-image: never used to fit or report the gate
    (that is worker/ml/nonxray.py). Each as it is, in grey, and a central crop in grey (portraits included)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    cases = []
    for path in sorted(folder.glob("*.[pj][np]g")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        gray = np.asarray(Image.open(path).convert("L"))
        h, w = gray.shape
        crop = gray[h // 6 : h - h // 6, w // 6 : w - w // 6]
        cases += [(f"{path.name} as is", images.encode(rgb)), (f"{path.name} grey", images.encode(gray))]
        cases.append((f"{path.name} grey crop", images.encode(np.ascontiguousarray(crop))))
    return cases


def test_shipped_gate_rejects_held_out_photographs_and_other_images(predictor: Predictor) -> None:
    cases = _held_out_non_radiographs()
    assert len(cases) >= 60
    accepted = []
    for name, data in cases:
        try:
            predictor.predict(data)
            accepted.append(name)
        except ImageRejected:
            pass
    print(f"held-out non-radiographs: {len(cases) - len(accepted)}/{len(cases)} rejected; accepted: {accepted}")
    assert len(accepted) / len(cases) <= 0.05, accepted
    assert not [name for name in accepted if name.startswith(("astronaut", "camera"))]  # portraits, in grey too


@pytest.mark.data
def test_shipped_gate_and_polarity_accept_real_radiographs(predictor: Predictor) -> None:
    need_training_images()
    for label in ("NORMAL", "PNEUMONIA"):
        for i in range(8):
            assert predictor.predict(images.real_radiograph(label, i)).label in ("NORMAL", "PNEUMONIA")
