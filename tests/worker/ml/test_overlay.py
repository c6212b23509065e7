import cv2
import numpy as np
import pytest

from worker.ml import overlay


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def test_render_returns_a_small_lossless_heatmap_and_an_overlay_jpeg_at_the_display_size() -> None:
    gray = np.full((600, 400), 100, np.uint8)
    cam = np.zeros((7, 7), np.float32)
    cam[3, 3] = 1.0
    heat_png, over_jpeg = overlay.render(gray, cam)
    assert heat_png.startswith(b"\x89PNG") and over_jpeg.startswith(b"\xff\xd8")
    heat, over = _decode(heat_png), _decode(over_jpeg)
    # the heatmap keeps the radiograph's aspect ratio (the viewer stretches it over the image), longest side 64
    assert heat.shape == (64, 43, 3) and over.shape == (600, 400, 3)
    # inferno: the peak is bright yellow, no evidence is black.
    assert heat[32, 21].sum() > 500 and heat[0, 0].sum() < 30
    assert not np.allclose(over[300, 200], over[0, 0], atol=20)


def test_a_small_radiograph_keeps_its_size_in_the_heatmap() -> None:
    assert overlay.heatmap_size(60, 50) == (60, 50)
    assert overlay.heatmap_size(3000, 1000) == (64, 21)


def test_no_evidence_leaves_the_radiograph_untouched() -> None:
    gray = np.tile(np.linspace(0, 255, 100, dtype=np.uint8), (120, 1))
    heat_png, over_jpeg = overlay.render(gray, np.zeros((7, 7), np.float32))
    # JPEG is lossy: within a few grey levels of the radiograph, and grey (no colour)
    over = _decode(over_jpeg).astype(int)
    assert np.abs(over - cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(int)).max() <= 4
    assert np.abs(over[..., 0] - over[..., 2]).max() <= 2
    assert _decode(heat_png).max() < 10
    assert np.array_equal(overlay.overlay(gray, np.zeros((7, 7), np.float32)), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def _blended_at_every_pixel(gray: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The overlay's definition, worked out at every pixel in floating point: the reference."""
    h, w = gray.shape
    values = np.clip(cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
    colour = cv2.applyColorMap((values * 255).astype(np.uint8), cv2.COLORMAP_INFERNO).astype(float)
    alpha = values[..., None] * overlay.MAX_ALPHA
    return np.asarray(gray[..., None] * (1 - alpha) + colour * alpha)


def test_the_blend_is_the_per_pixel_alpha_of_the_evidence() -> None:
    gray = np.full((40, 40), 80, np.uint8)
    cam = np.zeros((8, 8), np.float32)
    cam[2:6, 2:6] = 0.5
    out = overlay.overlay(gray, cam).astype(float)
    assert np.allclose(out[20, 20], _blended_at_every_pixel(gray, cam)[20, 20], atol=1)
    assert not np.allclose(out[20, 20], [80, 80, 80], atol=10)
    assert np.array_equal(out[0, 0], [80, 80, 80])  # no evidence: the radiograph to the bit


@pytest.mark.parametrize("width, height", [(768, 1024), (1024, 853), (1000, 33), (6, 1024)])
def test_the_overlay_of_a_clinical_or_odd_size_cannot_be_told_from_a_blend_at_every_pixel(
    width: int, height: int
) -> None:
    """The weights are worked out on a grid of at most BLEND_SIDE a side and stretched: a realistic map (smooth
    blobs) and the worst case (independent noise in each of the 14x14 cells) stay within what the JPEG itself
    changes, also for a very narrow image (the gate takes one of 32 pixels by 1,000)."""
    rng = np.random.default_rng(0)
    gray = cv2.resize(rng.integers(0, 256, (64, 48), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    blobs = cv2.GaussianBlur(rng.random((14, 14)).astype(np.float32), (5, 5), 1.0)
    for cam, worst, p999 in ((blobs / blobs.max(), 8, 3), (rng.random((14, 14)).astype(np.float32), 24, 4)):
        diff = np.abs(overlay.overlay(gray, cam).astype(float) - _blended_at_every_pixel(gray, cam))
        assert diff.mean() < 1 and np.percentile(diff, 99.9) <= p999 and diff.max() <= worst


def test_weak_evidence_is_fainter_than_strong_evidence() -> None:
    gray = np.full((70, 70), 50, np.uint8)
    weak, strong = (overlay.render(gray, np.full((7, 7), v, np.float32))[1] for v in (0.2, 1.0))
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(int)
    assert np.abs(_decode(weak).astype(int) - base).sum() < np.abs(_decode(strong).astype(int) - base).sum()


def test_the_colour_map_is_opencvs_inferno() -> None:
    values = np.linspace(0, 1, 300, dtype=np.float32).reshape(20, 15)
    heat = overlay.colorize(values, (15, 20))
    expected = cv2.applyColorMap((np.clip(values, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    assert np.array_equal(heat, expected)
