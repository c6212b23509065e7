import numpy as np
import pytest

from worker.ml import masks


@pytest.mark.parametrize("side", [224, 225, 31])
def test_median_grey_is_numpys_median_cast_to_uint8(side: int) -> None:
    rng = np.random.default_rng(side)
    cases = [rng.integers(0, 256, (side, side), dtype=np.uint8), np.full((side, side), 7, np.uint8)]
    half = np.zeros((side, side + 1), np.uint8)  # an even count whose middle pair differs: 0 and 255
    half.ravel()[half.size // 2 :] = 255
    cases += [half, rng.integers(100, 103, (side, side), dtype=np.uint8)]
    for image in cases:
        assert masks.median_grey(image) == np.uint8(np.median(image))
    assert masks.median_grey(half) == 127  # (0 + 255) / 2, truncated as np.uint8 truncates


def test_median_grey_counts_exactly_beyond_what_float32_counts_hold() -> None:
    image = np.zeros((4097, 4097), np.uint8)  # 2**24 + 8,193 pixels, past OpenCV's float32 histogram
    image.ravel()[image.size // 2 :] = 9  # the lower half is 0: the middle pixel is the first 9
    assert masks.median_grey(image) == np.uint8(np.median(image)) == 9


@pytest.mark.parametrize("side", [100, 224, 4, 2])
def test_mask_corners_sets_the_four_corners_to_the_median(side: int) -> None:
    image = np.arange(side * side, dtype=np.uint32).reshape(side, side).astype(np.uint8)
    out = masks.mask_corners(image)
    m = masks.corners_mask(side)
    assert (out[m] == np.uint8(np.median(image))).all()
    assert np.array_equal(out[~m], image[~m])
    assert m.any() == (side > 2)  # 2 x 0.2 rounds to no corner at all
