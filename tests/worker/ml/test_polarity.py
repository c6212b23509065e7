from typing import Any

import numpy as np
import pytest

from tests import images
from tests.needs import need_training_images
from worker.ml import polarity, preprocessing


def _chests(n: int) -> np.ndarray:
    return np.stack([images.chest_like(224, 224, seed=i) for i in range(n)])


def test_inverting_an_image_flips_the_sign_of_its_features() -> None:
    x = _chests(3)
    # Up to the rounding of the 8-bit area resize.
    assert np.allclose(polarity.features(255 - x), -polarity.features(x), atol=0.05)


def test_a_fitted_detector_tells_negatives_from_radiographs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    detector = polarity.fit(_chests(30))
    held_out = np.stack([images.chest_like(224, 224, seed=100 + i) for i in range(10)])
    assert (detector.p_inverted(held_out) < 0.5).all()
    assert (detector.p_inverted(255 - held_out) >= 0.5).all()
    assert detector.reason(held_out[0]) is None
    assert "inverted" in (detector.reason(255 - held_out[0]) or "")
    detector.save(tmp_path / "p.npz")
    assert np.array_equal(polarity.Polarity.load(tmp_path / "p.npz").coef, detector.coef.astype(np.float32))


@pytest.mark.data
def test_the_shipped_model_refuses_inverted_real_radiographs_and_judges_upright_ones(shipped_predictor: Any) -> None:
    need_training_images()
    predictor = shipped_predictor
    for label in ("NORMAL", "PNEUMONIA"):
        for i in range(3):
            data = images.real_radiograph(label, i)
            assert predictor.predict(data).label in ("NORMAL", "PNEUMONIA")
            negative = 255 - preprocessing.decode(data).gray
            with pytest.raises(preprocessing.ImageRejected, match="inverted"):
                predictor.predict(images.encode(negative))
