import numpy as np
import pytest

from worker.ml import probes
from worker.ml.masks import corners_mask, frame_mask

S = 224


def test_masks_cover_the_documented_shares() -> None:
    assert corners_mask(S).mean() == pytest.approx(4 * 0.2**2, abs=0.01)
    assert frame_mask(S).mean() == pytest.approx(1 - (1 - 2 * 0.12) ** 2, abs=0.01)  # 0.42
    assert not frame_mask(S)[S // 2, S // 2] and frame_mask(S)[0, S // 2]


def test_occlude_writes_each_images_median_into_the_mask_only() -> None:
    x = np.stack([np.full((S, S), 10, np.uint8), np.full((S, S), 200, np.uint8)])
    x[:, 0, 0] = 255
    out = probes.occlude(x, corners_mask(S))
    assert out[0, 0, 0] == 10 and out[1, 0, 0] == 200
    assert np.array_equal(out[:, S // 2], x[:, S // 2])


def test_border_mass_of_a_uniform_map_is_the_frame_share_and_of_a_central_map_zero() -> None:
    uniform = np.ones((1, 7, 7), np.float32)
    central = np.zeros((1, 14, 14), np.float32)
    central[0, 6:8, 6:8] = 1.0
    assert probes.border_mass(uniform, S)[0] == pytest.approx(0.42, abs=0.02)
    assert probes.border_mass(central, S)[0] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(probes.border_mass(np.zeros((1, 7, 7)), S)[0])


def _images(n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(60, 200, (n, S, S), dtype=np.uint8)


def test_a_model_that_reads_only_the_corners_moves_and_flips() -> None:
    corners = corners_mask(S)

    def corner_reader(x: np.ndarray) -> np.ndarray:
        return (x[:, corners].astype(float).mean(axis=1) - 130.0) / 10.0  # bright corners: pneumonia

    x = _images()
    x[::2, corners] = 250  # a bright marker in the corners of every other image
    report = probes.occlusion_report(probes.occluded_logits(corner_reader, x), 1.0, 0.9, None, S)
    assert report["occlusion_corners_dp05"] == 0.5  # exactly the marked half moves
    assert report["occlusion_flips_count"] == 20


def test_a_model_that_reads_only_the_centre_does_not_move() -> None:
    centre = ~frame_mask(S) & ~corners_mask(S)

    def centre_reader(x: np.ndarray) -> np.ndarray:
        return (x[:, centre].astype(float).mean(axis=1) - 128.0) / 10.0

    cams = np.zeros((40, 7, 7), np.float32)
    cams[:, 3, 3] = 1.0
    report = probes.occlusion_report(probes.occluded_logits(centre_reader, _images()), 1.0, 0.5, cams, S)
    assert report["occlusion_corners_dp05"] == 0.0
    assert report["occlusion_frame_dp05"] == 0.0
    assert report["occlusion_flips"] == 0.0
    assert report["cam_border_mass_median"] < 0.05
