"""Turn a Grad-CAM map into a coloured heatmap and an overlay on the radiograph (OpenCV, no TensorFlow)."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cam: (h, w) float in [0, 1]; size: (width, height). Returns (height, width, 3) uint8 BGR (JET)."""
    resized = cv2.resize(cam.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    as_u8 = np.clip(resized * 255.0, 0, 255).astype(np.uint8)
    return np.asarray(cv2.applyColorMap(as_u8, cv2.COLORMAP_JET), dtype=np.uint8)


def overlay(gray: np.ndarray, heatmap_bgr: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """gray: (H, W) uint8; heatmap_bgr: (H, W, 3) uint8. Returns the blended (H, W, 3) uint8 BGR image."""
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return np.asarray(cv2.addWeighted(heatmap_bgr, alpha, base, 1.0 - alpha, 0.0), dtype=np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return bytes(buf.tobytes())


def render(gray: np.ndarray, cam: np.ndarray) -> tuple[bytes, bytes]:
    """Returns (heatmap PNG, overlay PNG) at the size of `gray`."""
    h, w = gray.shape
    heat = colorize(cam, (w, h))
    return encode_png(heat), encode_png(overlay(gray, heat))
