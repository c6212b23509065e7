import numpy as np

from worker.ml.data import SHIFTS, shifted


def test_every_shift_changes_the_image_and_keeps_its_shape() -> None:
    gray = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    for kind in range(len(SHIFTS)):
        out = shifted(gray, kind)
        assert out.shape == gray.shape and out.dtype == np.uint8
        assert not np.array_equal(out, gray), kind
