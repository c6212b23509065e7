import cv2
import numpy as np

from worker.ml import overlay


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))


def test_render_returns_pngs_at_the_display_size_with_the_peak_bright() -> None:
    gray = np.full((300, 200), 100, np.uint8)
    cam = np.zeros((7, 7), np.float32)
    cam[3, 3] = 1.0
    heat_png, over_png = overlay.render(gray, cam)
    heat, over = _decode(heat_png), _decode(over_png)
    assert heat.shape == (300, 200, 3) and over.shape == (300, 200, 3)
    # inferno: the peak is bright yellow, no evidence is black.
    assert heat[150, 100].sum() > 500 and heat[0, 0].sum() < 30
    assert not np.array_equal(over[150, 100], over[0, 0])


def test_no_evidence_leaves_the_radiograph_untouched() -> None:
    gray = np.random.default_rng(0).integers(0, 256, (120, 100), dtype=np.uint8)
    heat_png, over_png = overlay.render(gray, np.zeros((7, 7), np.float32))
    assert np.array_equal(_decode(over_png), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert _decode(heat_png).max() < 10


def test_weak_evidence_is_fainter_than_strong_evidence() -> None:
    gray = np.full((70, 70), 50, np.uint8)
    weak, strong = (overlay.render(gray, np.full((7, 7), v, np.float32))[1] for v in (0.2, 1.0))
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(int)
    assert np.abs(_decode(weak).astype(int) - base).sum() < np.abs(_decode(strong).astype(int) - base).sum()
