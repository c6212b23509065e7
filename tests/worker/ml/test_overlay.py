import cv2
import numpy as np

from worker.ml import overlay


def test_render_returns_pngs_at_the_display_size() -> None:
    gray = np.full((300, 200), 100, np.uint8)
    cam = np.zeros((7, 7), np.float32)
    cam[3, 3] = 1.0
    heat_png, over_png = overlay.render(gray, cam)
    heat = np.asarray(cv2.imdecode(np.frombuffer(heat_png, np.uint8), cv2.IMREAD_COLOR))
    over = np.asarray(cv2.imdecode(np.frombuffer(over_png, np.uint8), cv2.IMREAD_COLOR))
    assert heat.shape == (300, 200, 3) and over.shape == (300, 200, 3)
    # JET: the peak is red (BGR: high R), the cold corners are blue.
    centre, corner = heat[150, 100], heat[0, 0]
    assert centre[2] > centre[0] and corner[0] > corner[2]
    assert not np.array_equal(over[150, 100], over[0, 0])
